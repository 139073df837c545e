"""Synthetic datasets: exactly the published layouts, rand_perm_cam.mat as the real one, deterministic bytes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from helpers.data import SYNTHETIC, SYNTHETIC_SIZE
from mcja.cli import main
from mcja.data.synthetic import make_synthetic
from mcja.data.synthetic.identity import PALETTE, sample_identity
from mcja.errors import DatasetError


def files(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def id_line(path: Path) -> list[int]:
    text = path.read_text()
    assert re.fullmatch(r"\d+(,\d+)*", text), text  # one line, comma-separated
    return [int(t) for t in text.split(",")]


@pytest.mark.parametrize("layout", ["sysu", "regdb", "llcm"])
def test_same_seed_same_bytes_other_seed_differs(layout, synthetic_root, tmp_path):
    first = files(synthetic_root(layout))
    opts = SYNTHETIC[layout]  # the sizes synthetic_root(layout) writes
    again = files(make_synthetic(layout, tmp_path / "again", seed=0, size=SYNTHETIC_SIZE, **opts))
    assert again == first
    other = files(make_synthetic(layout, tmp_path / "other", seed=1, size=SYNTHETIC_SIZE, **opts))
    assert other.keys() != first.keys() or other != first


def test_sysu_layout_and_id_files(synthetic_root):
    root = synthetic_root("sysu")
    train, val, test = (id_line(root / f"exp/{n}_id.txt") for n in ("train", "val", "test"))
    assert len(train) + len(val) + len(test) == 9 and len(test) == 3
    assert sorted(train + val + test) == id_line(root / "exp/available_id.txt")
    assert all(1 <= pid <= 333 for pid in train + val + test)
    images = [p.relative_to(root).as_posix() for p in root.rglob("*.jpg")]
    assert all(re.fullmatch(r"cam[1-6]/\d{4}/\d{4}\.jpg", rel) for rel in images)
    seen = {(int(rel[3]), int(rel[5:9])) for rel in images}
    for pid in train + val + test:  # everyone is seen in both modalities, not by every camera
        assert any((c, pid) in seen for c in (1, 2, 4, 5)) and any((c, pid) in seen for c in (3, 6))
    assert len(seen) < 6 * 9
    for cam, pid in seen:
        assert sorted(p.name for p in (root / f"cam{cam}/{pid:04d}").iterdir()) == ["0001.jpg", "0002.jpg", "0003.jpg"]


def test_sysu_rand_perm_cam_has_the_real_structure(synthetic_root):
    root = synthetic_root("sysu")
    perm = scipy.io.loadmat(root / "exp/rand_perm_cam.mat")["rand_perm_cam"]
    assert perm.shape == (6, 1) and perm.dtype == object
    for cam in range(1, 7):
        people = perm[cam - 1][0]
        assert people.shape == ((333, 1) if cam in (1, 2, 6) else (533, 1))
        for pid in range(1, people.shape[0] + 1):
            entry, folder = people[pid - 1][0], root / f"cam{cam}/{pid:04d}"
            if not folder.is_dir():
                assert entry.size == 0
                continue
            stems = sorted(int(p.stem) for p in folder.iterdir())
            assert entry.dtype == np.uint8 and entry.shape == (10, len(stems))
            assert all(sorted(row.tolist()) == stems for row in entry)
    rows = [perm[0][0][pid - 1][0] for pid in range(1, 334) if perm[0][0][pid - 1][0].size]
    assert any(len({tuple(r) for r in entry}) > 1 for entry in rows)  # trials differ


def test_regdb_layout_and_splits(synthetic_root):
    root = synthetic_root("regdb")
    visible = sorted(p.relative_to(root).as_posix() for p in (root / "Visible").rglob("*.bmp"))
    thermal = sorted(p.relative_to(root).as_posix() for p in (root / "Thermal").rglob("*.bmp"))
    assert len(visible) == len(thermal) == 6 * 4
    pattern = r"{}/(\d+)/(male|female)_(front|back)_{}_(\d{{5}})_(\d+)\.bmp"
    for rel in visible:
        pid, gender, view, serial, pid2 = re.fullmatch(pattern.format("Visible", "v"), rel).groups()
        assert pid == pid2
        assert f"Thermal/{pid}/{gender}_{view}_t_{serial}_{pid}.bmp" in thermal  # taken together
    for trial in range(1, 11):
        split = {}
        for name in ("train", "test"):
            for modality, folder in (("visible", "Visible"), ("thermal", "Thermal")):
                lines = (root / f"idx/{name}_{modality}_{trial}.txt").read_text().splitlines()
                pids = [int(line.split("/")[1]) for line in lines]
                labels = [int(line.split()[1]) for line in lines]
                ranks = {pid: i for i, pid in enumerate(sorted(set(pids)))}
                assert labels == [ranks[p] for p in pids] and all(line.startswith(folder + "/") for line in lines)
                split[name] = set(pids)
        assert len(split["train"]) == len(split["test"]) == 3 and not split["train"] & split["test"]


def test_llcm_layout(synthetic_root):
    root = synthetic_root("llcm")
    test = id_line(root / "idx/test_id.txt")
    assert len(test) == 2
    assert {p.name for p in (root / "test_vis").iterdir()} <= {f"cam{c}" for c in range(1, 10)}
    assert not (root / "test_nir/cam3").exists()
    for mod in ("vis", "nir"):
        for line in (root / f"idx/train_{mod}.txt").read_text().splitlines():
            rel, label = line.split()
            assert re.fullmatch(rf"{mod}/(\d{{4}})/\1_c0[1-9]_s\d+_f\d+_{mod}\.jpg", rel) and (root / rel).is_file()
            assert int(rel.split("/")[1]) not in test and int(label) >= 0
        for p in (root / f"test_{mod}").rglob("*.jpg"):
            assert re.fullmatch(rf"cam[1-9]/(\d{{4}})/\1_c0[1-9]_s\d+_f\d+_{mod}\.jpg", p.relative_to(root / f"test_{mod}").as_posix())
            assert int(p.parent.name) in test


def test_infrared_images_are_grey_and_visible_ones_coloured(synthetic_root):
    root = synthetic_root("sysu")
    ir = np.stack([np.asarray(Image.open(p)) for p in sorted(root.glob("cam3/*/*.jpg"))[:5]]).astype(int)
    vis = np.stack([np.asarray(Image.open(p)) for p in sorted(root.glob("cam1/*/*.jpg"))[:5]]).astype(int)
    assert ir.shape[1:] == (64, 32, 3) and vis.shape[1:] == (64, 32, 3)
    assert np.abs(ir[..., 0] - ir[..., 1]).max() <= 2 and np.abs(ir[..., 1] - ir[..., 2]).max() <= 2  # JPEG rounding
    assert np.abs(vis[..., 0] - vis[..., 2]).mean() > 5


def test_thermal_emissivity_is_not_a_function_of_colour():
    people = [sample_identity(pid, np.random.default_rng([0, pid])) for pid in range(400)]
    luminance = np.array([np.dot(p.top[0], (0.299, 0.587, 0.114)) for p in people])
    heat = np.array([p.heat_top[0] for p in people])
    assert abs(np.corrcoef(luminance, heat)[0, 1]) < 0.2
    palette = np.array(PALETTE)
    nearest = np.array([np.abs(palette - p.top[0]).sum(1).argmin() for p in people])
    common = np.bincount(nearest).argmax()
    assert np.ptp(heat[nearest == common]) > 0.3  # one shirt colour, many heat levels


def test_existing_dataset_is_reused_and_a_foreign_folder_refused(synthetic_root, tmp_path):
    root = synthetic_root("regdb")
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert make_synthetic("regdb", root, seed=0, size=SYNTHETIC_SIZE, **SYNTHETIC["regdb"]) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "busy")) + ": folder is not empty"):
        make_synthetic("regdb", tmp_path / "busy", ids=2, images_per_camera=1)
    with pytest.raises(DatasetError, match="--ids must be between 3 and 333"):
        make_synthetic("sysu", tmp_path / "x", ids=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]  # nothing half-written left behind


def test_make_synthetic_command(tmp_path, capsys):
    out = tmp_path / "llcm"
    assert main(["make-synthetic", "--layout", "llcm", "--out", str(out), "--ids", "3", "--images-per-camera", "1",
                 "--size", "32x16", "--seed", "5"]) == 0
    assert str(out) in capsys.readouterr().out
    assert {Image.open(p).size for p in out.rglob("*.jpg")} == {(16, 32)}
    assert main(["make-synthetic", "--layout", "sysu", "--out", str(tmp_path / "s"), "--ids", "2"]) == 2
    assert "--ids must be between 3 and 333" in capsys.readouterr().err
