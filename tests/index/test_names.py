"""File names that are not UTF-8 (`café.png` written in Latin-1) survive build, update, search and remove: stored as
their bytes, given back as the same file (PEP 383 escapes in JSON), printed readably, never a traceback."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from PIL import Image

from helpers.inference import pattern_image
from mcja import GalleryIndex
from mcja.cli import main
from mcja.inference import FeatureExtractor

LATIN1 = b"caf\xe9.png"  # "café.png" in Latin-1: not valid UTF-8


def write_latin1(folder: Path, name: bytes = LATIN1, variant: int = 9) -> bytes:
    """A pattern image saved under a Latin-1 file name in `folder`; its full path as bytes."""
    path = os.path.join(os.fsencode(folder), name)
    with open(path, "wb") as f:
        Image.fromarray(pattern_image(1, variant)).save(f, format="PNG")
    return path


def test_latin1_name_builds_updates_searches_and_is_removed(checkpoint, archive, tmp_path, capsys, monkeypatch):
    raw = write_latin1(archive / "visible" / "0001")
    idx = tmp_path / "idx"
    assert main(["index", "build", "--checkpoint", str(checkpoint), "--images", str(archive), "--out", str(idx),
                 "--quiet"]) == 0
    assert "13 images (13 new" in capsys.readouterr().out
    with sqlite3.connect(idx / "index.sqlite") as db:  # stored as the name's bytes, the other names as text
        kinds = dict(db.execute("SELECT path, typeof(path) FROM images").fetchall())
    assert kinds.pop(raw) == "blob" and set(kinds.values()) == {"text"} and len(kinds) == 12

    seen = []
    real = FeatureExtractor.extract
    monkeypatch.setattr(FeatureExtractor, "extract", lambda self, items, **kw: seen.extend(items) or real(self, items, **kw))
    assert main(["index", "update", str(idx), "--quiet"]) == 0
    assert "(0 new, 0 changed, 0 removed; extracted 0" in capsys.readouterr().out and seen == []

    out = tmp_path / "res"
    assert main(["index", "search", str(idx), "--query", os.fsdecode(raw), "--top-k", "3", "--out", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "visible/0001/caf\\xe9.png 1.000" in printed  # readable: the undecodable byte as \xe9
    text = (out / "results.json").read_text(encoding="ascii")
    assert '"path": "' + str(archive) + '/visible/0001/caf\\udce9.png"' in text  # PEP 383 escape, documented
    (entry,) = json.loads(text)["queries"]
    best = entry["results"][0]
    assert os.fsencode(best["path"]) == raw  # the path gives back the very file
    with open(os.fsencode(best["path"]), "rb") as f, open(raw, "rb") as g:
        assert f.read() == g.read()
    assert Image.open(os.fsencode(entry["picture"])).format == "PNG"  # its contact sheet was drawn

    index = GalleryIndex.open(idx)
    assert index.remove([raw]) == 1 and len(index) == 12
    with sqlite3.connect(idx / "index.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM images WHERE path = ?", (raw,)).fetchone()[0] == 0


def test_unreadable_latin1_name_is_skipped_and_named(checkpoint, archive, tmp_path, capsys):
    bad = os.path.join(os.fsencode(archive / "visible" / "0002"), b"bad\xff.png")
    with open(bad, "wb") as f:
        f.write(b"\x89PNG broken")
    assert main(["index", "build", "--checkpoint", str(checkpoint), "--images", str(archive), "--out",
                 str(tmp_path / "idx"), "--quiet"]) == 2
    assert "bad\\xff.png: cannot read image" in capsys.readouterr().err  # one line, no traceback
    assert main(["index", "build", "--checkpoint", str(checkpoint), "--images", str(archive), "--out",
                 str(tmp_path / "idx"), "--quiet", "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "warning: skipped" in captured.err and "bad\\xff.png" in captured.err and "12 images" in captured.out
