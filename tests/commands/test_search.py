"""`mcja search`: ranking, JSON and PNG outputs, the gallery feature cache, re-ranking and error paths."""

import json
import os
import shutil

import numpy as np
from PIL import Image

from helpers.inference import pattern_image, write_gallery
from mcja.cli import main


def _search(checkpoint, queries, gallery, out, *extra):
    return main(["search", "--checkpoint", str(checkpoint), "--query", *map(str, queries), "--gallery", str(gallery),
                 "--out", str(out), "--quiet", *extra])


def test_query_in_gallery_ranks_itself_first(checkpoint, gallery, tmp_path, capsys):
    query = gallery / "0002" / "0002_c1_1.png"
    assert _search(checkpoint, [query], gallery, tmp_path / "out", "--top-k", "4") == 0
    out = capsys.readouterr().out
    assert "gallery features: computed 6" in out and "rank-1 correct for 1/1 queries" in out
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    (entry,) = report["queries"]
    assert entry["pid"] == 2 and [r["rank"] for r in entry["results"]] == [1, 2, 3, 4]
    first = entry["results"][0]
    assert first["path"] == str(query) and abs(first["score"] - 1.0) < 1e-4 and first["correct"] is True
    scores = [r["score"] for r in entry["results"]]
    assert scores == sorted(scores, reverse=True) and all(r["correct"] == (r["pid"] == 2) for r in entry["results"])
    picture = Image.open(entry["picture"])
    assert picture.format == "PNG" and picture.width >= 5 * 64  # the query and 4 thumbnails in a row
    pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3).astype(int)
    for colour in ((0, 170, 0), (220, 0, 0)):  # only 2 images of id 2: green and red borders both appear
        assert (np.abs(pixels - colour).sum(1) < 30).sum() > 100, colour
    assert report["gallery_images"] == 6 and report["score"] == "cosine similarity"


def test_gallery_cache_is_reused_until_a_file_changes(checkpoint, tmp_path, capsys):
    gallery = tmp_path / "gallery"
    paths = write_gallery(gallery)
    out = tmp_path / "out"
    query = paths[0]
    assert _search(checkpoint, [query], gallery, out) == 0
    assert "gallery features: computed 6" in capsys.readouterr().out
    first = json.loads((out / "results.json").read_text())
    assert _search(checkpoint, [query], gallery, out) == 0
    assert "gallery features: reused cache (6 images)" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["queries"] == first["queries"]
    # a changed gallery image: new pixels and a new modification time
    Image.fromarray(pattern_image(9, 9)).save(paths[3])
    os.utime(paths[3], ns=(1, 1))
    assert _search(checkpoint, [query], gallery, out) == 0
    assert "gallery features: computed 1" in capsys.readouterr().out  # only the changed image
    shutil.copy(paths[0], gallery / "0001" / "0001_c1_extra.png")  # an added image
    assert _search(checkpoint, [query], gallery, out) == 0
    assert "gallery features: computed 1" in capsys.readouterr().out
    report = json.loads((out / "results.json").read_text())
    assert report["gallery_images"] == 7 and report["queries"][0]["results"][0]["score"] > 0.9999
    paths[5].unlink()  # a deleted image leaves the results
    assert _search(checkpoint, [query], gallery, out, "--top-k", "10") == 0
    report = json.loads((out / "results.json").read_text())
    assert report["gallery_images"] == 6 and str(paths[5]) not in [r["path"] for r in report["queries"][0]["results"]]


def test_rerank_ranks_the_query_identity_first(checkpoint, gallery, tmp_path, capsys):
    queries = [gallery / "0001" / "0001_c1_0.png", gallery / "0003" / "0003_c1_1.png"]
    assert _search(checkpoint, queries, gallery, tmp_path / "out", "--rerank", "--top-k", "3") == 0
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert report["rerank"] is True and report["score"].startswith("1 - MSER re-ranked distance")
    for query, entry in zip(queries, report["queries"]):
        # the gallery side is averaged over its R/G/B views, so the exact copy may trade places with its twin
        top2 = entry["results"][:2]
        assert all(r["correct"] for r in top2) and str(query) in [r["path"] for r in top2]
        exact = next(r for r in top2 if r["path"] == str(query))
        assert abs(exact["cosine"] - 1.0) < 1e-4
    raw = np.fromfile(tmp_path / "out" / "gallery_index_mser" / "features.float32", dtype=np.float32)
    assert raw.shape == (6 * 4 * 512,)  # MSER views of the gallery
    assert len(list((tmp_path / "out").glob("query_*.png"))) == 2


def test_a_query_folder_and_unknown_ids(checkpoint, tmp_path, capsys):
    gallery = tmp_path / "photos"
    gallery.mkdir()
    for i in range(3):  # flat folder, names without ids: no colours, no correctness
        Image.fromarray(pattern_image(i + 1, 0)).save(gallery / f"photo{i}.png")
    assert _search(checkpoint, [gallery], gallery, gallery / "results") == 0  # output inside the gallery
    report = json.loads((gallery / "results" / "results.json").read_text())
    assert len(report["queries"]) == 3 and report["gallery_images"] == 3  # the PNGs written were not searched
    assert all("correct" not in r and "pid" not in r for q in report["queries"] for r in q["results"])
    assert _search(checkpoint, [gallery], gallery, gallery / "results") == 0
    assert "reused cache (3 images)" in capsys.readouterr().out


def test_search_errors_are_one_clear_line(checkpoint, gallery, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    query = gallery / "0001" / "0001_c1_0.png"
    cases = [
        ([query], empty, [], "no images found"),
        ([tmp_path / "nope.jpg"], gallery, [], "nope.jpg: image file not found"),
        ([query], gallery, ["--top-k", "0"], "--top-k"),
    ]
    for queries, folder, extra, message in cases:
        assert _search(checkpoint, queries, folder, tmp_path / "out", *extra) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_unreadable_gallery_image_fails_or_is_skipped(checkpoint, tmp_path, capsys):
    gallery = tmp_path / "gallery"
    paths = write_gallery(gallery, ids=(1, 2), per_id=1)
    (gallery / "0002" / "0002_c1_broken.png").write_bytes(b"\x89PNG broken")
    assert _search(checkpoint, [paths[0]], gallery, tmp_path / "out") == 2
    assert "0002_c1_broken.png: cannot read image" in capsys.readouterr().err
    assert _search(checkpoint, [paths[0]], gallery, tmp_path / "out", "--skip-bad") == 0
    captured = capsys.readouterr()
    assert "warning: skipped" in captured.err and "0002_c1_broken.png" in captured.err
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert report["gallery_images"] == 2 and len(report["skipped"]) == 1
    # the cached run remembers the bad file: without --skip-bad it is an error again, not silently reused
    assert _search(checkpoint, [paths[0]], gallery, tmp_path / "out") == 2
