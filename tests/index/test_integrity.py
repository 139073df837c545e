"""No poisoned folders, no dead-end hints: a build that indexed nothing leaves nothing, read-only verbs never write
(not even into a foreign or empty database file), a damaged or out-of-step faiss.index is refused with a hint whose
command (`mcja index repair`) brings back the same results, and so does `mcja index update`."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from helpers.index import hinted_command, rows_by_path, write_archive
from mcja import GalleryIndex
from mcja.cli import main


def build(checkpoint, images, out, *extra):
    return main(["index", "build", "--checkpoint", str(checkpoint), "--images", str(images), "--out", str(out),
                 "--device", "cpu", "--quiet", *extra])


def one_line(capsys, *parts):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(p in err for p in parts), err
    return err


def search(idx, query, out):
    return main(["index", "search", str(idx), "--query", str(query), "--top-k", "10", "--out", str(out),
                 "--device", "cpu", "--quiet"])


def top10(idx, checkpoint, query):
    index = GalleryIndex.open(idx, checkpoint, device="cpu")
    (hits,) = index.search([str(query)], top_k=10)
    index.close()
    return [(h["path"], round(h["score"], 5)) for h in hits]


def test_a_build_that_indexed_nothing_leaves_nothing(checkpoint, archive, tmp_path, capsys):
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build(checkpoint, tmp_path / "no_such_dir", out) == 2
    one_line(capsys, "image folder not found")
    assert build(checkpoint, empty, out) == 2
    one_line(capsys, "no images found")
    assert not out.exists()  # refused before anything was made
    mine = tmp_path / "mine"  # a folder the user made and gave: it stays, with what was in it
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    bad = archive / "visible" / "0001" / "0001_c1_broken.png"
    bad.write_bytes(b"\x89PNG broken")
    for target in (out, mine):
        assert build(checkpoint, archive, target) == 2  # the first (only) chunk fails
        one_line(capsys, "0001_c1_broken.png")
    assert not out.exists() and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    missing = tmp_path / "missing.pt"
    assert build(missing, archive, out) == 2  # a wrong checkpoint
    capsys.readouterr()
    assert not out.exists()
    bad.unlink()
    assert build(checkpoint, archive, mine) == 0  # the corrected build is not refused
    assert len(rows_by_path(mine)) == 12 and (mine / "notes.txt").read_text() == "keep me"
    # an index of another source is refused with a hint that works: build into another --out
    other = tmp_path / "other"
    write_archive(other, ids=(4,), per_id=1)
    assert build(checkpoint, other, mine) == 2
    err = one_line(capsys, "this index holds", "another --out")
    assert "mcja index update" not in err
    assert build(checkpoint, other, tmp_path / "other.idx") == 0


def test_read_only_verbs_never_write(checkpoint, archive, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / "index.sqlite") as db:
        db.execute("CREATE TABLE photos (name TEXT)")
        db.execute("INSERT INTO photos VALUES ('holiday.jpg')")
    db.close()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "index.sqlite").write_bytes(b"")
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    query = archive / "visible" / "0001" / "0001_c1_0.png"
    files = [foreign / "index.sqlite", empty / "index.sqlite", idx / "index.sqlite"]
    before = {f: f.read_bytes() for f in files}
    for folder, message in [(foreign, "not an mcja gallery index database"), (empty, "an empty file")]:
        for argv in (["info", str(folder)], ["search", str(folder), "--query", str(query), "--out", str(tmp_path / "r"),
                                            "--checkpoint", str(checkpoint), "--quiet"]):
            capsys.readouterr()
            assert main(["index", *argv]) == 2, argv
            one_line(capsys, message)
    assert main(["index", "info", str(idx)]) == 0
    assert search(idx, query, tmp_path / "r") == 0
    assert {f: f.read_bytes() for f in files} == before
    assert sorted(p.name for p in foreign.iterdir()) == ["index.sqlite"]  # no journal, no index files either


def test_a_damaged_faiss_index_is_repaired_by_the_hinted_command_or_by_update(checkpoint, archive, tmp_path, capsys):
    pytest.importorskip("faiss")
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    query = archive / "infrared" / "0002" / "0002_c3_0.png"
    expected = top10(idx, checkpoint, query)
    assert len(expected) == 10
    good = (idx / "faiss.index").read_bytes()
    (idx / "faiss.index").write_bytes(good[: len(good) // 2])  # damaged
    with open(idx / "features.float16", "ab") as f:
        f.write(b"\0" * 100)  # and a chunk written but never committed
    capsys.readouterr()
    assert search(idx, query, tmp_path / "r") == 2
    hint = hinted_command(one_line(capsys, "faiss.index", "run `mcja index repair"))
    assert hint == ["index", "repair", str(idx)]
    assert main(hint) == 0
    out = capsys.readouterr().out
    assert "cut 100 uncommitted bytes" in out and "faiss.index rebuilt (flat) over 12 images" in out
    assert (idx / "features.float16").stat().st_size == 12 * 512 * 2
    assert top10(idx, checkpoint, query) == expected
    # a faiss.index of another moment (here: before an update; or a writer killed before recording it)
    old = (idx / "faiss.index").read_bytes()
    (archive / "visible" / "0003" / "0003_c2_1.png").unlink()
    assert main(["index", "update", str(idx), "--quiet"]) == 0
    expected = top10(idx, checkpoint, query)
    (idx / "faiss.index").write_bytes(old)
    capsys.readouterr()
    assert search(idx, query, tmp_path / "r") == 2
    assert main(hinted_command(one_line(capsys, "not the search structure index.sqlite records"))) == 0
    assert top10(idx, checkpoint, query) == expected
    # `update` repairs it too
    (idx / "faiss.index").write_bytes(b"garbage" * 50)
    assert main(["index", "update", str(idx), "--quiet"]) == 0
    assert top10(idx, checkpoint, query) == expected


def test_an_interrupted_write_names_a_command_that_finishes_it(checkpoint, archive, tmp_path, capsys, monkeypatch):
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    write_archive(archive, ids=(6,), per_id=1)
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("mcja.index.gallery.refresh_structure", killed)
    assert main(["index", "update", str(idx), "--quiet"]) == 130  # killed after extracting, before the structure
    monkeypatch.undo()
    capsys.readouterr()
    query = archive / "visible" / "0006" / "0006_c1_0.png"
    assert search(idx, query, tmp_path / "r") == 2
    assert main(hinted_command(one_line(capsys, "interrupted before its search structure was written"))) == 0
    assert top10(idx, checkpoint, query)[0][0] == str(query)


def test_a_copied_index_folder_is_searched_as_the_original(checkpoint, archive, tmp_path):
    """The database records faiss.index by its bytes (not its inode or mtime): a copy stays valid."""
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    shutil.copytree(idx, tmp_path / "copy")
    query = archive / "visible" / "0002" / "0002_c1_0.png"
    assert top10(tmp_path / "copy", checkpoint, query) == top10(idx, checkpoint, query)


def test_an_interrupted_sharded_build_names_a_command_that_finishes_it(checkpoint, archive, tmp_path, capsys):
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    shard = idx / "shards" / "rank-1"  # what a torchrun build killed before its merge leaves (rank 1's block)
    shard.mkdir(parents=True)
    (shard / "done.json").write_text(json.dumps({"rows": 0, "ids": [], "errors": []}))
    capsys.readouterr()
    assert main(["index", "info", str(idx)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "interrupted sharded build" in x)
    assert main([*hinted_command(line), "--quiet"]) == 0
    assert main(["index", "info", str(idx)]) == 0
    assert "interrupted sharded build" not in capsys.readouterr().out and not (idx / "shards").exists()
