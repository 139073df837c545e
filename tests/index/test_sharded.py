"""Sharded build under torchrun: two gloo ranks on CPU each extract half the images; the merged index equals a
one-process build (same ids, rows and features)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers.index import write_archive
from helpers.processes import TORCHRUN, child_env, run_torchrun
from mcja.cli import main


def _rows(index_dir):
    with sqlite3.connect(index_dir / "index.sqlite") as db:
        return {p: (i, r) for p, i, r in db.execute("SELECT path, id, row FROM images")}


@pytest.mark.slow
def test_two_gloo_ranks_build_the_same_index_as_one_process(checkpoint, archive, tmp_path):
    common = ["--checkpoint", str(checkpoint), "--images", str(archive), "--chunk", "2", "--device", "cpu", "--quiet"]
    assert main(["index", "build", *common, "--out", str(tmp_path / "one")]) == 0
    proc = run_torchrun([*TORCHRUN, "-m", "mcja", "index", "build", *common, "--out", str(tmp_path / "two")])
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert out.count("12 images (12 new") == 1  # rank 0 reports, once
    assert _rows(tmp_path / "one") == _rows(tmp_path / "two")
    one = np.fromfile(tmp_path / "one" / "features.float16", dtype=np.float16)
    two = np.fromfile(tmp_path / "two" / "features.float16", dtype=np.float16)
    np.testing.assert_array_equal(one, two)
    assert not (tmp_path / "two" / "shards").exists()  # merged and cleaned up


@pytest.mark.slow
def test_a_build_killed_with_sigkill_resumes_to_the_same_index(checkpoint, tmp_path):
    images = tmp_path / "images"
    write_archive(images, ids=(1, 2, 3), per_id=20)  # 120 images, one chunk each: a window to kill in
    args = ["index", "build", "--checkpoint", str(checkpoint), "--images", str(images), "--chunk", "1", "--device",
            "cpu", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "mcja", *args, "--out", str(tmp_path / "idx")], env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_file = tmp_path / "idx" / "index.sqlite"
    committed = 0
    deadline = time.monotonic() + 120
    while proc.poll() is None and committed < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
        if db_file.exists():
            try:
                with sqlite3.connect(db_file, timeout=0.1) as db:
                    committed = db.execute("SELECT COUNT(*) FROM images WHERE row IS NOT NULL").fetchone()[0]
            except sqlite3.OperationalError:
                pass  # the schema is still being created
    proc.kill()
    proc.wait()
    if committed >= 120 or proc.returncode == 0:
        pytest.skip("the build finished before it could be killed")
    assert main([*args, "--out", str(tmp_path / "idx")]) == 0
    assert _rows(tmp_path / "whole") == _rows(tmp_path / "idx")
    whole = np.fromfile(tmp_path / "whole" / "features.float16", dtype=np.float16)
    resumed = np.fromfile(tmp_path / "idx" / "features.float16", dtype=np.float16)
    np.testing.assert_array_equal(whole, resumed)
