"""One writer per index: real `mcja index update` processes racing end with the index a clean build makes; a held
writer lock makes --no-wait refuse in one line and the Python API raise; a SIGKILLed holder blocks nobody; readers
take no lock and, during another writer's work, see its last complete state (never a half-written one)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.index import features_of, lock_holder, rows_by_path, write_archive
from helpers.processes import child_env
from mcja import GalleryIndex
from mcja.cli import main
from mcja.index.store import Store
from mcja.index.writer import IndexBusy
from mcja.utils.lock import acquire, read_holder, release

DEADLINE_S = 180  # a generous bound for the child processes, only to fail instead of hanging


def build(checkpoint, images, out, *extra):
    return main(["index", "build", "--checkpoint", str(checkpoint), "--images", str(images), "--out", str(out),
                 "--device", "cpu", "--quiet", *extra])


def wait_for(condition, what: str, procs=()) -> None:
    """Poll `condition` until true; fail (killing `procs`) after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            for p in procs:
                p.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def committed(index_dir: Path) -> int:
    """Images with a committed feature row (plain sqlite3)."""
    try:
        with sqlite3.connect(index_dir / "index.sqlite", timeout=0.1) as db:
            return db.execute("SELECT COUNT(*) FROM images WHERE row IS NOT NULL").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def top10(index_dir: Path, checkpoint: Path, queries: list[str]) -> list[list[tuple[str, float]]]:
    index = GalleryIndex.open(index_dir, checkpoint, device="cpu")
    hits = index.search(queries, top_k=10)
    index.close()
    return [[(h["path"], round(h["score"], 5)) for h in q] for q in hits]


def test_racing_updates_end_as_a_clean_build(checkpoint, archive, tmp_path):
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    write_archive(archive, ids=tuple(range(10, 34)), per_id=5)  # 240 new images: work for the first update
    held = acquire(idx / "writer.lock", "pytest holder")  # both updates start and wait on the lock together
    procs, errs = [], []
    for chunk in ("20", "50"):
        err = tmp_path / f"stderr-{chunk}.txt"
        with open(err, "w") as f:
            procs.append(subprocess.Popen([sys.executable, "-m", "mcja", "index", "update", str(idx), "--chunk", chunk,
                                           "--device", "cpu", "--quiet"], env=child_env(), stdout=subprocess.PIPE,
                                          stderr=f, text=True))
        errs.append(err)
    wait_for(lambda: all("waiting for the writer lock" in e.read_text() for e in errs), "both updates to wait", procs)
    release(held)
    wait_for(lambda: committed(idx) > 12 or any(p.poll() is not None for p in procs), "a first chunk", procs)
    first = read_holder(idx / "writer.lock")  # the update that has listed the source and is committing chunks
    write_archive(archive, ids=tuple(range(40, 52)), per_id=5)  # 120 more: work for the other one (it lists later)
    in_time = first is not None and read_holder(idx / "writer.lock") == first
    outs = [p.communicate(timeout=DEADLINE_S)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e.read_text()[-2000:] for e in errs]
    for e in errs:  # each said once whom it waited for
        lines = [x for x in e.read_text().splitlines() if "waiting for the writer lock" in x]
        assert len(lines) == 1 and f"held by pid {os.getpid()} (pytest holder, since " in lines[0], lines
    in_time = in_time and "(240 new" in dict(zip([p.pid for p in procs], outs)).get(first.pid, "")  # it was the first
    if not in_time:
        pytest.skip("the first update ended before the new source images were written")
    assert not any("(0 new" in out for out in outs), outs  # both had work: the second listed after taking the lock
    assert build(checkpoint, archive, tmp_path / "clean") == 0
    raced, clean = rows_by_path(idx), rows_by_path(tmp_path / "clean")
    assert sorted(raced) == sorted(clean) and len(raced) == 12 + 240 + 120
    assert sorted(r for _, r in raced.values()) == list(range(len(raced)))  # every image its own row, none orphaned
    assert (idx / "features.float16").stat().st_size == len(raced) * 512 * 2
    fr, fc = features_of(idx), features_of(tmp_path / "clean")
    assert all(fr[p].tobytes() == fc[p].tobytes() for p in fc)  # each path holds its own image's features
    queries = [str(archive / "visible" / f"{pid:04d}" / f"{pid:04d}_c1_0.png") for pid in (1, 12, 45)]
    assert top10(idx, checkpoint, queries) == top10(tmp_path / "clean", checkpoint, queries)


def test_no_wait_refuses_a_held_lock_and_a_killed_holder_blocks_nobody(checkpoint, archive, tmp_path, capsys):
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    write_archive(archive, ids=(7,), per_id=1)
    holder = lock_holder(idx, "mcja index update")
    try:
        capsys.readouterr()
        for argv in (["update", str(idx)], ["repair", str(idx)],
                     ["build", "--checkpoint", str(checkpoint), "--images", str(archive), "--out", str(idx)]):
            assert main(["index", *argv, "--no-wait"]) == 2, argv
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"another writer holds the index: pid {holder.pid} (mcja index update, " \
                   "since " in err, err
        assert main(["index", "info", str(idx)]) == 0  # readers take no lock
        assert "12 images, 0 pending" in capsys.readouterr().out
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert main(["index", "update", str(idx), "--no-wait", "--quiet"]) == 0  # the kernel dropped the lock
    assert "14 images (2 new" in capsys.readouterr().out


def test_python_writers_wait_then_raise_one_line(checkpoint, archive, tmp_path, capsys):
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    new = write_archive(tmp_path / "more", ids=(8,), per_id=1)
    index = GalleryIndex.open(idx, checkpoint, lock_timeout=0, device="cpu")
    held = acquire(idx / "writer.lock", "mcja serve: POST /gallery")
    try:
        for write in (lambda: index.add(new, progress=False), lambda: index.remove([new[0]]),
                      lambda: GalleryIndex.create(idx, checkpoint, lock_timeout=0, device="cpu")):
            with pytest.raises(IndexBusy) as caught:
                write()
            assert "\n" not in str(caught.value) and f"pid {os.getpid()} (mcja serve: POST /gallery, since" in str(
                caught.value)
        capsys.readouterr()
        index.lock.timeout = 0.2  # waits a little, says so once, then gives up
        with pytest.raises(IndexBusy):
            index.add(new, progress=False)
        assert capsys.readouterr().err.count("waiting for the writer lock held by pid") == 1
    finally:
        release(held)
    assert index.add(new, progress=False)["extracted"] == 2 and len(index) == 14


def test_a_reader_sees_the_last_complete_state_during_a_write_and_the_new_one_after(checkpoint, archive, tmp_path,
                                                                                     monkeypatch):
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    gone = str(archive / "infrared" / "0002" / "0002_c3_1.png")
    query = [str(archive / "visible" / "0001" / "0001_c1_0.png")]
    reader = GalleryIndex.open(idx, checkpoint, device="cpu")  # long-lived, like `mcja serve`'s
    ranking = lambda index: [(h["id"], h["path"], h["score"]) for h in index.search(query, top_k=50)[0]]  # noqa: E731
    before = ranking(reader)
    assert len(before) == 12
    seen = []

    def search_now():  # the long-lived reader, and one opened now
        seen.extend([ranking(reader), ranking(GalleryIndex.open(idx, checkpoint, device="cpu"))])

    real_commit, real_mark = Store.commit_rows, Store.mark_indexed

    def commit_then_search(self, *args):  # features appended and committed, search structure not yet written
        real_commit(self, *args)
        search_now()

    def search_then_mark(self, *args, **kw):  # the new faiss.index is in place, the database does not say so yet
        search_now()
        real_mark(self, *args, **kw)

    monkeypatch.setattr(Store, "commit_rows", commit_then_search)
    monkeypatch.setattr(Store, "mark_indexed", search_then_mark)
    writer = GalleryIndex.open(idx, checkpoint, device="cpu")
    new = write_archive(tmp_path / "more", ids=(5, 6), per_id=1)  # 4 images
    writer.add(new, progress=False)
    assert seen == [before] * 4  # while adding: the last complete state, exactly (no half-added image, no crash)
    after_add = ranking(GalleryIndex.open(idx, checkpoint, device="cpu"))
    assert len(after_add) == 16 and {str(p) for p in new} <= {p for _, p, _ in after_add}
    seen.clear()
    writer.remove([gone])
    assert seen == [[h for h in after_add if h[1] != gone]] * 2  # while removing: the image is gone already
    monkeypatch.undo()
    after = ranking(reader)  # the long-lived reader re-loads: equal to a new one
    assert after == ranking(GalleryIndex.open(idx, checkpoint, device="cpu")) == seen[0]
