"""Camera and modality of every row, from the layouts mcja reads (SYSU-MM01, RegDB, LLCM; folders, --camera /
--modality), and filters that never come back silently empty: a label no image has is refused in one line, and
"top N of M" counts what the filters allow."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from helpers.cli import one_line_error, run_cli
from mcja.cli import main
from mcja.data.registry import load_dataset


def expected_labels(layout: str, rel: Path) -> tuple[int, int]:
    """(camera, modality 0 visible / 1 infrared) of an image by its layout's published rules (DATASETS.md), by hand."""
    top = rel.parts[0]
    if layout == "sysu":  # camN/<pid>/<n>.jpg; cameras 3 and 6 are the infrared ones
        cam = int(top[3:])
        return cam, int(cam in (3, 6))
    if layout == "regdb":  # Visible/ is camera 1, Thermal/ camera 2
        return {"Visible": (1, 0), "Thermal": (2, 1)}[top]
    if top in ("vis", "nir"):  # LLCM training: vis|nir/<pid>/<pid>_cNN_..., camera from the file name
        return int(re.search(r"_c(\d+)_", rel.name).group(1)), int(top == "nir")
    return int(rel.parts[1][3:]), int(top == "test_nir")  # LLCM test: test_vis|test_nir/camN/<pid>/


def rows(index_dir: Path) -> dict[str, tuple]:
    """path -> (camera, modality), read with plain sqlite3."""
    with sqlite3.connect(index_dir / "index.sqlite") as db:
        return {p: (c, m) for p, c, m in db.execute("SELECT path, camera, modality FROM images")}


def build(checkpoint, images, out, *extra) -> int:
    return main(["index", "build", "--checkpoint", str(checkpoint), "--images", str(images), "--out", str(out),
                 "--quiet", *extra])


@pytest.mark.parametrize("layout", ["sysu", "regdb", "llcm"])
def test_every_row_has_its_layouts_camera_and_modality(layout, synthetic_root, checkpoint, tmp_path):
    root = synthetic_root(layout)
    assert build(checkpoint, root, tmp_path / "idx") == 0
    got = rows(tmp_path / "idx")
    images = [p for p in root.rglob("*") if p.suffix in (".jpg", ".bmp")]
    assert len(got) == len(images)
    for path in images:
        assert got[str(path)] == expected_labels(layout, path.relative_to(root)), path
    # the dataset reader agrees on every image it reads (SYSU and LLCM leave some out; the index keeps all)
    data = load_dataset(layout, root)
    for s in data.train + data.test_visible + data.test_infrared:
        assert got[s.path] == (s.camera, s.modality), s.path


@pytest.fixture(scope="module")
def sysu_index(synthetic_root, checkpoint, tmp_path_factory) -> tuple[Path, Path]:
    """(SYSU root, an index of it), shared read-only by the filter tests."""
    root = synthetic_root("sysu")
    out = tmp_path_factory.mktemp("sysu-index") / "idx"
    assert build(checkpoint, root, out) == 0
    return root, out


def search(capsys, index_dir: Path, query: Path, out: Path, *options: str) -> tuple[dict, str]:
    code, stdout, _ = run_cli(capsys, "index", "search", str(index_dir), "--query", str(query), "--out", str(out),
                              "--top-k", "1000", "--quiet", *options)
    assert code == 0
    return json.loads((out / "results.json").read_text()), stdout


def test_filters_return_only_matching_images_and_count_them(sysu_index, tmp_path, capsys):
    root, idx = sysu_index
    images = sorted(root.glob("cam*/*/*.jpg"))
    infrared = [p for p in images if p.parts[-3] in ("cam3", "cam6")]
    query = infrared[0]
    report, stdout = search(capsys, idx, query, tmp_path / "ir", "--modality", "infrared")
    results = report["queries"][0]["results"]
    assert sorted(r["path"] for r in results) == sorted(map(str, infrared))
    assert {r["modality"] for r in results} == {"infrared"} and {r["camera"] for r in results} == {3, 6}
    assert report["gallery_images"] == len(infrared) and report["index_images"] == len(images)
    assert f"top {len(infrared)} of {len(infrared)} images allowed by the filters" in stdout
    cam2 = [p for p in images if p.parts[-3] == "cam2"]
    report, stdout = search(capsys, idx, query, tmp_path / "c2", "--camera", "2", "--modality", "visible")
    assert sorted(r["path"] for r in report["queries"][0]["results"]) == sorted(map(str, cam2))
    assert report["gallery_images"] == len(cam2) and f"of {len(cam2)} images allowed" in stdout


def test_a_filter_no_image_passes_is_refused_in_one_line(sysu_index, gallery, checkpoint, tmp_path, capsys):
    root, idx = sysu_index
    query = str(next(root.glob("cam1/*/*.jpg")))
    base = ["index", "search", str(idx), "--query", query, "--out", str(tmp_path / "r"), "--quiet"]
    cameras = ", ".join(str(c) for c in sorted({int(p.parts[-3][3:]) for p in root.glob("cam*/*/*.jpg")}))
    assert main([*base, "--camera", "7"]) == 2
    one_line_error(capsys, f"--camera 7: no image in this index has camera 7 (cameras present: {cameras})")
    assert main([*base, "--camera", "3", "--modality", "visible"]) == 2
    one_line_error(capsys, "--modality visible --camera 3: no image in this index passes these filters together")
    assert build(checkpoint, gallery, tmp_path / "plain") == 0  # <pid>/<pid>_c1_<n>.png: no modality anywhere
    capsys.readouterr()
    assert main(["index", "search", str(tmp_path / "plain"), "--query", query, "--out", str(tmp_path / "r"),
                 "--modality", "infrared", "--quiet"]) == 2
    one_line_error(capsys, "--modality infrared: no image in this index has a modality: build it with --modality")


def test_camera_and_modality_options_label_a_folder_and_update_relabels(gallery, checkpoint, tmp_path, capsys):
    idx = tmp_path / "idx"
    assert build(checkpoint, gallery, idx, "--camera", "5", "--modality", "infrared") == 0
    # the names' c1 token tells the camera (kept); nothing tells the modality (the option's)
    assert set(rows(idx).values()) == {(1, 1)} and len(rows(idx)) == 6
    code, out, _ = run_cli(capsys, "index", "info", str(idx))
    assert f"source: folder {gallery}, and for images whose path tells none: camera 5, modality infrared\n" in out
    code, out, _ = run_cli(capsys, "index", "update", str(idx), "--modality", "visible", "--quiet")
    assert code == 0 and "(0 new, 0 changed, 0 removed, 6 relabelled; extracted 0" in out
    assert set(rows(idx).values()) == {(1, 0)}
