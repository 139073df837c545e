"""Dataset readers: records, labels, cameras and modalities in each published layout, and every error path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers.data import TINY_COUNTS, counts_on_disk
from mcja.data import INFRARED, VISIBLE, VIDataset
from mcja.data.registry import DATASET_NAMES, load_dataset
from mcja.errors import DatasetError


def counts(ds: VIDataset) -> dict[str, int]:
    """The six data-info counts of a dataset's records."""
    vis = [s for s in ds.train if s.modality == VISIBLE]
    return {"train_ids": len({s.pid for s in ds.train}), "train_visible": len(vis),
            "train_infrared": len(ds.train) - len(vis),
            "test_ids": len({s.pid for s in ds.test_visible + ds.test_infrared}),
            "test_visible": len(ds.test_visible), "test_infrared": len(ds.test_infrared)}


def check_invariants(ds: VIDataset) -> None:
    """Labels 0..N-1, one per person; test records unlabelled; each side holds one modality."""
    label_of = {}
    for s in ds.train:
        assert label_of.setdefault(s.pid, s.label) == s.label
    assert sorted(label_of.values()) == list(range(len(label_of)))
    assert all(s.label == -1 and s.modality == VISIBLE for s in ds.test_visible)
    assert all(s.label == -1 and s.modality == INFRARED for s in ds.test_infrared)
    assert all(Path(s.path).is_file() for s in ds.train + ds.test_visible + ds.test_infrared)


def test_dataset_names_and_unknown_name():
    assert DATASET_NAMES == ("sysu", "regdb", "llcm", "folder")
    with pytest.raises(DatasetError, match="unknown dataset 'market'"):
        load_dataset("market", "/tmp")


# ---- hand-made layouts (counts fixed in conftest) ----
def test_sysu_tiny(tiny_roots):
    ds = load_dataset("sysu", tiny_roots["sysu"])
    check_invariants(ds)
    assert counts(ds) == TINY_COUNTS["sysu"]
    assert {s.pid: s.label for s in ds.train} == {3: 0, 1: 1, 2: 2}  # file order: train "3,1" then val "2"
    assert {(s.camera, s.modality) for s in ds.train} == {(1, 0), (2, 0), (4, 0), (5, 0), (3, 1), (6, 1)}
    assert {s.camera for s in ds.test_visible} == {1, 2, 4} and {s.camera for s in ds.test_infrared} == {3, 6}
    assert ds.meta["rand_perm_cam"] == str(tiny_roots["sysu"] / "exp" / "rand_perm_cam.mat")
    assert ds.train[0].path == str(tiny_roots["sysu"] / "cam1" / "0001" / "0001.jpg")


def test_regdb_tiny_trial3(tiny_roots):
    ds = load_dataset("regdb", tiny_roots["regdb"], trial=3)
    check_invariants(ds)
    assert counts(ds) == TINY_COUNTS["regdb"]
    assert {s.pid: s.label for s in ds.train} == {2: 0, 5: 1}
    assert {(s.camera, s.modality) for s in ds.train} == {(1, VISIBLE), (2, INFRARED)}
    assert [s.pid for s in ds.test_infrared] == [1, 1, 3, 3, 4, 4, 6, 6]  # index-file order
    assert ds.test_infrared[0].path.endswith("Thermal/1/male_front_t_00100_1.bmp")
    assert counts(load_dataset("regdb", tiny_roots["regdb"], trial=1))["train_ids"] == 3


def test_llcm_tiny(tiny_roots):
    ds = load_dataset("llcm", tiny_roots["llcm"])
    check_invariants(ds)
    assert counts(ds) == TINY_COUNTS["llcm"]
    assert sorted(s.camera for s in ds.train if s.modality == VISIBLE) == [1, 2, 5, 9, 9]
    assert sorted(s.camera for s in ds.train if s.modality == INFRARED) == [3, 4, 4, 6]
    assert {s.pid: s.label for s in ds.train} == {1: 0, 2: 1, 3: 2}
    # id-major, then camera, then file name, as the DEEN code lists them
    assert [(s.pid, s.camera) for s in ds.test_visible] == [(11, 1), (11, 1), (11, 9), (12, 3)]
    assert [(s.pid, s.camera) for s in ds.test_infrared] == [(11, 2), (12, 4), (12, 4)]


# ---- synthetic layouts (the project's generator; expected counts found on disk independently) ----
@pytest.mark.parametrize("layout", ["sysu", "regdb", "llcm"])
def test_synthetic_layouts_read_with_the_counts_on_disk(layout, synthetic_root):
    root = synthetic_root(layout)
    ds = load_dataset(layout, root, trial=2)
    check_invariants(ds)
    assert counts(ds) == counts_on_disk(layout, root, trial=2)
    assert ds.num_train_ids == counts(ds)["train_ids"]


def test_synthetic_sysu_labels_follow_the_id_files_and_cameras_the_modality(synthetic_root):
    root = synthetic_root("sysu")
    order = [int(t) for t in ((root / "exp/train_id.txt").read_text() + "," + (root / "exp/val_id.txt").read_text()).split(",")]
    ds = load_dataset("sysu", root)
    assert {s.pid: s.label for s in ds.train} == {pid: i for i, pid in enumerate(order)}
    for s in ds.train + ds.test_visible + ds.test_infrared:
        cam, pid = re.search(r"cam(\d)/(\d{4})/\d{4}\.jpg$", s.path).groups()
        assert (s.camera, s.pid) == (int(cam), int(pid))
        assert s.modality == (INFRARED if s.camera in (3, 6) else VISIBLE)


def test_synthetic_llcm_cameras_come_from_the_name_token_and_the_test_folder(synthetic_root):
    ds = load_dataset("llcm", synthetic_root("llcm"))
    for s in ds.train:
        assert s.camera == int(re.search(r"_c(\d\d)_", Path(s.path).name).group(1))
    for s in ds.test_visible + ds.test_infrared:
        assert f"/cam{s.camera}/{s.pid:04d}/" in s.path
    assert 3 not in {s.camera for s in ds.test_infrared}


# ---- the folder reader ----
def _img(path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 8)).save(path)
    return path


def test_folder_tree_with_named_people_and_camera_tokens(tmp_path):
    for rel in ["RGB/alice/a_c3_1.jpg", "RGB/alice/b.png", "thermal/alice/x.bmp", "thermal/bob/cam7_y.jpg",
                "vis/bob/z.jpg", "notes/readme.jpg"]:
        _img(tmp_path / rel)
    ds = load_dataset("folder", tmp_path)
    check_invariants(ds)
    got = sorted((Path(s.path).name, s.pid, s.camera, s.modality, s.label) for s in ds.train)
    assert got == [("a_c3_1.jpg", 1, 3, 0, 0), ("b.png", 1, 1, 0, 0), ("cam7_y.jpg", 2, 7, 1, 1),
                   ("x.bmp", 1, 2, 1, 0), ("z.jpg", 2, 1, 0, 1)]
    assert ds.meta["pid_names"] == {1: "alice", 2: "bob"}
    assert ds.test_visible == [] and ds.test_infrared == []


def test_folder_csv_with_header_words_and_relative_paths(tmp_path):
    for rel in ["imgs/1.jpg", "imgs/2.jpg", "imgs/3.jpg"]:
        _img(tmp_path / rel)
    (tmp_path / "list.csv").write_text("path,pid,camera,modality\nimgs/1.jpg,7,4,visible\nimgs/2.jpg,7,,IR\n\nimgs/3.jpg,12,5,0\n")
    for root in (tmp_path / "list.csv", tmp_path):  # the CSV itself, or a folder holding it
        ds = load_dataset("folder", root)
        assert [(s.pid, s.camera, s.modality, s.label) for s in ds.train] == [(7, 4, 0, 0), (7, 2, 1, 0), (12, 5, 0, 1)]


def test_folder_train_and_test_splits(tmp_path):
    for rel in ["train/visible/3/a.jpg", "train/infrared/3/b.jpg", "train/infrared/9/c.jpg"]:
        _img(tmp_path / rel)
    _img(tmp_path / "t/q.jpg")
    (tmp_path / "test.csv").write_text("t/q.jpg,5,1,1\n")
    ds = load_dataset("folder", tmp_path)
    assert sorted((s.pid, s.modality, s.label) for s in ds.train) == [(3, 0, 0), (3, 1, 0), (9, 1, 1)]
    assert [(s.pid, s.camera, s.label) for s in ds.test_infrared] == [(5, 1, -1)] and ds.test_visible == []


# ---- errors: one line naming the path and what was expected ----
@pytest.mark.parametrize("name, expected", [("sysu", "SYSU-MM01"), ("regdb", "RegDB"), ("llcm", "LLCM"),
                                            ("folder", "visible")])
def test_missing_root_names_it_and_the_layout(tmp_path, name, expected):
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as err:
        load_dataset(name, root)
    message = str(err.value)
    assert str(root) in message and "not found" in message and expected in message and "\n" not in message


@pytest.mark.parametrize("layout, rel", [("sysu", "exp/test_id.txt"), ("sysu", "exp/val_id.txt"),
                                         ("regdb", "idx/test_thermal_1.txt"), ("llcm", "idx/train_nir.txt"),
                                         ("llcm", "idx/test_id.txt")])
def test_missing_id_or_index_file_is_named(tiny_copy, layout, rel):
    root = tiny_copy(layout)
    (root / rel).unlink()
    with pytest.raises(DatasetError, match=re.escape(str(root / rel)) + ".*not found"):
        load_dataset(layout, root)


@pytest.mark.parametrize("layout, rel, image", [("regdb", "idx/train_visible_1.txt", "Visible/2/male_front_v_00201_2.bmp"),
                                                ("llcm", "idx/train_vis.txt", "vis/0002/0002_c01_s20002_f3_vis.jpg")])
def test_index_line_naming_a_missing_image(tiny_copy, layout, rel, image):
    root = tiny_copy(layout)
    (root / image).unlink()
    line = next(i for i, text in enumerate((root / rel).read_text().splitlines(), 1) if text.startswith(image))
    with pytest.raises(DatasetError) as err:
        load_dataset(layout, root)
    assert str(err.value) == f"{root / rel} line {line}: image not found: {root / image}"


@pytest.mark.parametrize("layout, rel, bad", [("regdb", "idx/test_visible_1.txt", "Visible/4/x.bmp"),
                                              ("regdb", "idx/test_visible_1.txt", "Visible/4/x.bmp four"),
                                              ("llcm", "idx/train_nir.txt", "nir/0001/a.jpg 1 2")])
def test_malformed_index_line(tiny_copy, layout, rel, bad):
    root = tiny_copy(layout)
    lines = (root / rel).read_text().splitlines()
    (root / rel).write_text("\n".join(lines[:1] + [bad] + lines[1:]) + "\n")
    with pytest.raises(DatasetError, match=re.escape(f"{root / rel} line 2: expected '<relative image path> <label>'")):
        load_dataset(layout, root)


def test_llcm_training_name_without_camera_token(tiny_copy):
    root = tiny_copy("llcm")
    _img(root / "vis/0001/no_token.jpg")
    (root / "idx/train_vis.txt").write_text("vis/0001/no_token.jpg 0\n")
    with pytest.raises(DatasetError, match=r"train_vis\.txt line 1: expected a camera token '_cNN_'.*no_token\.jpg"):
        load_dataset("llcm", root)


def test_malformed_id_file_and_train_id_without_images(tiny_copy):
    root = tiny_copy("sysu")
    (root / "exp/train_id.txt").write_text("3;1")
    with pytest.raises(DatasetError, match=re.escape(str(root / "exp/train_id.txt")) + ": expected one line of comma"):
        load_dataset("sysu", root)
    (root / "exp/train_id.txt").write_text("3,1,9")
    with pytest.raises(DatasetError, match=r"training id 9 has no images"):
        load_dataset("sysu", root)


def test_missing_camera_folder_and_empty_datasets(tiny_copy, tmp_path):
    root = tiny_copy("sysu")
    for p in (root / "cam6").rglob("*.jpg"):
        p.unlink()
    for d in sorted((root / "cam6").iterdir()):
        d.rmdir()
    (root / "cam6").rmdir()
    with pytest.raises(DatasetError, match=re.escape(str(root / "cam6")) + ": folder not found"):
        load_dataset("sysu", root)
    (tmp_path / "empty" / "visible").mkdir(parents=True)
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "empty")) + ": no training images found"):
        load_dataset("folder", tmp_path / "empty")
    (tmp_path / "other").mkdir()
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "other")) + ": expected"):
        load_dataset("folder", tmp_path / "other")


def test_bad_csv_rows_are_named_with_their_line(tmp_path):
    _img(tmp_path / "a.jpg")
    for body, msg in [("a.jpg,1,2\n", "expected 'path,pid,camera,modality'"), ("a.jpg,1,x,0\n", "integer camera"),
                      ("a.jpg,1,2,0\nb.jpg,1,2,1\n", f" 2: image not found: {tmp_path / 'b.jpg'}")]:
        (tmp_path / "l.csv").write_text(body)
        with pytest.raises(DatasetError, match=re.escape(f"{tmp_path / 'l.csv'} line") + ".*" + re.escape(msg)):
            load_dataset("folder", tmp_path / "l.csv")
