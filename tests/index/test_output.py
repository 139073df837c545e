"""What `mcja index` prints and writes for a person: paths relative to the index's root, plain `info` lines, one
progress bar; and a top-k larger than the index, clamped to it (bounded by the index, never by the request)."""

from __future__ import annotations

import functools
import json

import numpy as np
from tqdm.auto import tqdm

from helpers.cli import one_line_error, run_cli
from mcja import GalleryIndex
from mcja.cli import main
from mcja.index import build as build_module
from mcja.inference import FeatureExtractor


def build(checkpoint, images, out, *extra):
    return main(["index", "build", "--checkpoint", str(checkpoint), "--images", str(images), "--out", str(out),
                 "--quiet", *extra])


def test_search_prints_paths_relative_to_the_images_folder_or_lists_common_parent(checkpoint, archive, tmp_path,
                                                                                   capsys):
    query = archive / "visible" / "0002" / "0002_c1_0.png"
    assert build(checkpoint, archive, tmp_path / "idx") == 0
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "index", "search", str(tmp_path / "idx"), "--query", str(query), "--out",
                           str(tmp_path / "r"), "--top-k", "1", "--quiet")
    assert code == 0 and out.splitlines()[0] == f"{query}: visible/0002/0002_c1_0.png 1.000"
    assert json.loads((tmp_path / "r" / "results.json").read_text())["root"] == str(archive)
    # a list kept elsewhere (here: beside the archive, not above it) shows paths from the images' common parent
    listed = tmp_path / "lists" / "crops.txt"
    listed.parent.mkdir()
    listed.write_text("".join(f"{p}\n" for p in sorted(archive.rglob("*.png"))))
    assert main(["index", "build", "--checkpoint", str(checkpoint), "--list", str(listed), "--out",
                 str(tmp_path / "lidx"), "--quiet"]) == 0
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "index", "search", str(tmp_path / "lidx"), "--query", str(query), "--out",
                           str(tmp_path / "r2"), "--top-k", "1", "--quiet")
    assert code == 0 and out.splitlines()[0] == f"{query}: visible/0002/0002_c1_0.png 1.000"


def test_info_prints_plain_lines(checkpoint, archive, tmp_path, capsys):
    listed = tmp_path / "crops.txt"
    listed.write_text("".join(f"{p}\n" for p in sorted(archive.rglob("*.png"))))
    assert main(["index", "build", "--checkpoint", str(checkpoint), "--list", str(listed), "--out",
                 str(tmp_path / "idx"), "--quiet"]) == 0
    code, out, _ = run_cli(capsys, "index", "info", str(tmp_path / "idx"))
    assert code == 0 and f"\nsource: list {listed}\n" in out
    assert not any(c in out for c in "{}[]'"), out  # no Python reprs


def test_build_draws_its_progress_bar_once(checkpoint, archive, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(build_module, "tqdm", functools.partial(tqdm, mininterval=0, miniters=1))  # draw every update
    assert main(["index", "build", "--checkpoint", str(checkpoint), "--images", str(archive), "--out",
                 str(tmp_path / "idx"), "--chunk", "5"]) == 0  # progress on; three chunks
    err = capsys.readouterr().err
    assert "index:" in err and err.count("12/12") == 1, err  # the finished bar is not drawn a second time


def test_a_huge_top_k_returns_every_image_ranked_as_with_k_equal_to_their_number(checkpoint, archive, tmp_path,
                                                                                   capsys, monkeypatch):
    idx = tmp_path / "idx"
    assert build(checkpoint, archive, idx) == 0
    query = str(archive / "infrared" / "0001" / "0001_c3_0.png")
    asked = []
    real = GalleryIndex.run_search
    monkeypatch.setattr(GalleryIndex, "run_search", lambda self, q, k, allowed: asked.append(k) or real(self, q, k, allowed))
    runs = {}
    for k in ("12", "1000000000"):
        code, out, err = run_cli(capsys, "index", "search", str(idx), "--query", query, "--out", str(tmp_path / k),
                                 "--top-k", k, "--quiet")
        assert code == 0
        runs[k] = (json.loads((tmp_path / k / "results.json").read_text()), out, err)
    exact, huge = runs["12"][0], runs["1000000000"][0]
    assert huge["queries"][0]["results"] == exact["queries"][0]["results"] and len(exact["queries"][0]["results"]) == 12
    assert huge["top_k"] == 12 and huge["top_k_requested"] == 1000000000
    assert runs["1000000000"][2].count("--top-k 1000000000 is more than the 12 images") == 1 and runs["12"][2] == ""
    assert "top 12 of 12 images" in runs["1000000000"][1]
    assert max(asked) == 12  # the search structure was never asked for more than the index holds
    # with a filter: what the filters allow; the Python API (and so the service) is bounded the same way
    index = GalleryIndex.open(idx, checkpoint, device="cpu")
    q = FeatureExtractor(checkpoint, device="cpu")([query]).numpy()
    (ir,) = index.search(q, top_k=10**9, modality="infrared")
    assert len(ir) == 6 and max(asked) == 12 and asked[-1] == 6
    (exact_ir,) = index.search(q, top_k=6, modality="infrared")
    assert [h["id"] for h in ir] == [h["id"] for h in exact_ir]
    np.testing.assert_allclose([h["score"] for h in ir], [h["score"] for h in exact_ir])


def test_searching_an_index_without_images_is_refused(checkpoint, archive, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("a.png", "b.png"):
        (broken / name).write_bytes(b"\x89PNG not an image")
    assert build(checkpoint, broken, tmp_path / "idx", "--skip-bad") == 0
    capsys.readouterr()
    assert main(["index", "search", str(tmp_path / "idx"), "--query", str(next(archive.rglob("*.png"))), "--out",
                 str(tmp_path / "r"), "--quiet"]) == 2
    one_line_error(capsys, "the index holds no searchable images (0 pending, 2 unreadable)")
