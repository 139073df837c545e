"""A failing image closes its progress bar before the error line, so the line starts cleanly on a terminal."""

import sys

from helpers.inference import write_gallery
from mcja.cli import main
from mcja.data.cache import ImageCache
from mcja.errors import DatasetError


def _as_rendered(stderr):
    """What a terminal shows on the last line: the text after the last carriage return of the last line."""
    return stderr.rstrip("\n").split("\n")[-1].split("\r")[-1]


def test_missing_query_closes_its_bar_first(checkpoint, gallery, tmp_path, capsys):
    missing = tmp_path / "nope.jpg"
    code = main(["search", "--checkpoint", str(checkpoint), "--query", str(gallery / "0001" / "0001_c1_0.png"),
                 str(missing), "--gallery", str(gallery), "--out", str(tmp_path / "out")])  # progress bars on
    err = capsys.readouterr().err
    assert code == 2 and "queries" in err  # the bar was drawn
    assert _as_rendered(err) == f"mcja search: error: {missing}: image file not found"


def test_unreadable_image_closes_the_cache_and_verify_bars(tmp_path, capsys):
    root = tmp_path / "folder"
    for modality in ("visible", "infrared"):
        write_gallery(root / modality, ids=(1, 2), per_id=1)
    bad = root / "infrared" / "0002" / "0002_c2_9.png"
    bad.write_bytes(b"\x89PNG not really")
    assert main(["data-info", "--dataset", "folder", "--root", str(root), "--verify"]) == 2
    err = capsys.readouterr().err
    assert "verify" in err and _as_rendered(err).startswith(f"mcja data-info: error: {bad}: cannot read image")
    paths = sorted(str(p) for p in root.rglob("*.png"))
    try:
        ImageCache.build(paths, (32, 16), tmp_path / "cache", progress=True)
    except DatasetError as err_line:
        print(f"error: {err_line}", file=sys.stderr)
    err = capsys.readouterr().err
    assert "caching" in err and _as_rendered(err).startswith(f"error: {bad}: cannot read image")
