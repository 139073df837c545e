"""Atomic writes survive a full disk and a power loss; the command line survives a closed pipe."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mcja.cli import main
from mcja.errors import MCJAError
from mcja.utils import io


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A real 1 MiB filesystem (tmpfs; needs root and mount rights, as on CI), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_disk_full_during_a_checkpoint_write_keeps_the_old_file_and_says_so(tiny_disk):
    path = tiny_disk / "last.pt"
    io.atomic_torch_save({"epoch": 1, "w": torch.ones(1000)}, path)
    with pytest.raises(MCJAError, match=r"disk full while writing it; the previous last.pt is intact"):
        io.atomic_torch_save({"epoch": 2, "w": torch.ones(1_000_000)}, path)  # 4 MB into 1 MiB
    kept = torch.load(path, weights_only=True)
    assert kept["epoch"] == 1 and torch.equal(kept["w"], torch.ones(1000))
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["last.pt"]  # no temporary file left behind


def test_enospc_from_any_writer_is_one_line(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(MCJAError, match=r"results.json: disk full while writing it; no results.json was written"):
        io.atomic_write_json(tmp_path / "results.json", {"r1": 1.0})


def test_atomic_writes_reach_the_disk_before_and_after_the_rename(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    io.atomic_write_text(tmp_path / "a.txt", "hello")
    assert len(synced) == 2
    assert Path(synced[0]).parent == tmp_path and Path(synced[0]).name.startswith(".a.txt.")  # the data
    assert Path(synced[1]) == tmp_path  # the folder entry of the rename


def test_stale_temporaries_are_found_and_removed(tmp_path):
    (tmp_path / ".last.pt.x1.tmp").write_bytes(b"x")
    (tmp_path / "last.pt").write_bytes(b"keep")
    removed = io.remove_stale_temporaries(tmp_path)
    assert [p.name for p in removed] == [".last.pt.x1.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_closed_pipe_does_not_stop_the_command(monkeypatch):
    """`mcja ... | head`: once the reader has gone, output is dropped and the work goes on to a normal exit."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone
    broken = os.fdopen(write_end, "w", buffering=1)
    with pytest.raises(BrokenPipeError):  # what a plain print would hit
        broken.write("x\n")
    monkeypatch.setattr(sys, "stdout", broken)
    assert main(["model-info", "--depth", "18", "--size", "64x32"]) == 0
    assert sys.stdout is broken
    broken.close()  # its descriptor now points at /dev/null: no error at exit either


def test_threads_option_sets_torch_threads(capsys):
    before = torch.get_num_threads()
    try:
        assert main(["--threads", "2", "model-info", "--depth", "18", "--size", "64x32"]) == 0
        assert torch.get_num_threads() == 2
        assert "2 threads" in capsys.readouterr().out
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit) as exit_:
        main(["--threads", "0", "model-info"])
    assert exit_.value.code == 2
