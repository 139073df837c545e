"""`mcja data-info`: counts of each layout as JSON and tables, SYSU-MM01 trial galleries, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import run_cli
from helpers.data import TINY_COUNTS, counts_on_disk

COUNT_KEYS = ("train_ids", "train_visible", "train_infrared", "test_ids", "test_visible", "test_infrared")


def json_counts(capsys, layout: str, root: Path, *extra: str) -> dict[str, int]:
    code, out, _ = run_cli(capsys, "data-info", "--dataset", layout, "--root", str(root), "--json", *extra)
    assert code == 0
    info = json.loads(out)
    assert all(type(info[k]) is int for k in COUNT_KEYS)
    return {k: info[k] for k in COUNT_KEYS}


@pytest.mark.parametrize("layout", ["sysu", "regdb", "llcm"])
def test_acceptance_layouts_written_by_other_code(layout, tiny_roots, capsys):
    extra = ("--trial", "3") if layout == "regdb" else ()
    assert json_counts(capsys, layout, tiny_roots[layout], *extra) == TINY_COUNTS[layout]


def test_acceptance_missing_root_is_one_line_without_traceback(tmp_path):
    root = tmp_path / "no" / "SYSU-MM01"
    run = subprocess.run([sys.executable, "-m", "mcja", "data-info", "--dataset", "sysu", "--root", str(root)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stdout == "" and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and str(root) in run.stderr and "SYSU-MM01" in run.stderr


@pytest.mark.parametrize("layout", ["sysu", "regdb", "llcm"])
def test_json_counts_of_synthetic_layouts(layout, synthetic_root, capsys):
    root = synthetic_root(layout)
    assert json_counts(capsys, layout, root, "--trial", "4") == counts_on_disk(layout, root, trial=4)


def test_sysu_gallery_sizes_per_trial(synthetic_root, capsys):
    root = synthetic_root("sysu")
    test_ids = [int(t) for t in (root / "exp/test_id.txt").read_text().split(",")]
    # The first `shots` numbers of each (camera, test id) entry: one image, or all of them when fewer than 10.
    folders = {cam: [root / f"cam{cam}/{pid:04d}" for pid in test_ids if (root / f"cam{cam}/{pid:04d}").is_dir()]
               for cam in (1, 2, 4, 5)}
    expected = {
        f"{mode}/{shots}-shot": sum(min(shots, len(list(f.iterdir()))) for cam in cams for f in folders[cam])
        for mode, cams in (("all", (1, 2, 4, 5)), ("indoor", (1, 2))) for shots in (1, 10)
    }
    code, out, _ = run_cli(capsys, "data-info", "--dataset", "sysu", "--root", str(root), "--json")
    assert code == 0
    assert json.loads(out)["gallery_sizes"] == {k: [v] * 10 for k, v in expected.items()}
    code, out, _ = run_cli(capsys, "data-info", "--dataset", "sysu", "--root", str(root))
    table = out[out.index("gallery images per trial"):].splitlines()
    assert len(table) == 12 and table[2].split() == ["1"] + [str(expected[k]) for k in expected]


def test_tables_and_missing_rand_perm_note(tiny_roots, capsys):
    code, out, _ = run_cli(capsys, "data-info", "--dataset", "sysu", "--root", str(tiny_roots["sysu"]))
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("train ", "test "))}
    assert rows == {"train": ["3", "5", "4"], "test": ["2", "4", "4"]}
    assert f"{tiny_roots['sysu'] / 'exp' / 'rand_perm_cam.mat'} not found" in out
    code, out, _ = run_cli(capsys, "data-info", "--dataset", "llcm", "--root", str(tiny_roots["llcm"]), "--json")
    assert json.loads(out)["cameras"]["test_infrared"] == {"2": 1, "4": 2}


def test_verify_names_the_corrupt_image(tiny_copy, capsys):
    root = tiny_copy("regdb")
    bad = root / "Thermal/5/male_front_t_00501_5.bmp"
    bad.write_bytes(b"not an image")
    assert run_cli(capsys, "data-info", "--dataset", "regdb", "--root", str(root), "--trial", "3", "--json")[0] == 0
    code, out, err = run_cli(capsys, "data-info", "--dataset", "regdb", "--root", str(root), "--trial", "3", "--verify")
    assert code == 2 and out == ""
    last = err.strip().splitlines()[-1]  # progress bar lines come first
    assert last.startswith("mcja data-info: error: ") and str(bad) in last and "cannot read image" in last


def test_missing_index_file_is_a_one_line_error(tiny_copy, capsys):
    root = tiny_copy("regdb")
    code, out, err = run_cli(capsys, "data-info", "--dataset", "regdb", "--root", str(root), "--trial", "11")
    assert code == 2 and out == ""
    assert err.strip() == f"mcja data-info: error: {root / 'idx/train_visible_11.txt'}: index file " \
                          "('<relative image path> <label>' per line) not found"


@pytest.mark.parametrize("layout, rel, listed", [("sysu", "exp/test_id.txt", "4,5"), ("llcm", "idx/test_id.txt", "11,12")])
def test_test_ids_without_images_are_warned_about(tiny_copy, capsys, layout, rel, listed):
    root = tiny_copy(layout)
    code, _, err = run_cli(capsys, "data-info", "--dataset", layout, "--root", str(root))
    assert code == 0 and "warning" not in err
    (root / rel).write_text(listed + ",777,31")  # two ids that no image shows
    code, out, err = run_cli(capsys, "data-info", "--dataset", layout, "--root", str(root), "--json")
    assert code == 0 and json.loads(out)["test_ids_without_images"] == [31, 777]
    assert err.splitlines() == [f"mcja data-info: warning: test id {pid} is listed in {root / rel} but has no images "
                                "at all" for pid in (31, 777)]
    many = ",".join(str(900 + i) for i in range(12))
    (root / rel).write_text(f"{listed},{many}")
    code, out, err = run_cli(capsys, "data-info", "--dataset", layout, "--root", str(root))
    assert code == 0 and "images per camera" in out
    assert err.splitlines() == [f"mcja data-info: warning: 12 test ids listed in {root / rel} have no images at all: "
                                + ", ".join(str(900 + i) for i in range(10)) + ", ..."]
