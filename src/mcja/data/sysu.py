"""SYSU-MM01 in its published layout: cam1..cam6/<pid:04d>/<n:04d>.jpg and exp/{train,val,test}_id.txt.

Training uses the train and val ids, labelled in the order the two id files list them (train ids,
then val ids), as the reference code does, so its checkpoints' classifiers line up. The test sets
are all images of the test ids: visible cameras 1, 2, 4, 5 and infrared cameras 3, 6.
"""

from __future__ import annotations

import os
from pathlib import Path

from mcja.data.layout import list_images, read_id_list, require_dir, require_root, require_samples
from mcja.data.records import INFRARED, VISIBLE, Sample, VIDataset
from mcja.errors import DatasetError

CAMERAS = (1, 2, 3, 4, 5, 6)
VISIBLE_CAMERAS = (1, 2, 4, 5)
INFRARED_CAMERAS = (3, 6)
LAYOUT = "a SYSU-MM01 folder with cam1..cam6/<pid>/<n>.jpg and exp/train_id.txt, val_id.txt, test_id.txt"


def read_sysu(root: str | os.PathLike) -> VIDataset:
    """Read SYSU-MM01 from `root`; meta['rand_perm_cam'] is the path of exp/rand_perm_cam.mat (may not exist),
    meta['test_ids'] the ids exp/test_id.txt lists (data-info warns about those without images)."""
    path = require_root(root, LAYOUT)
    exp = path / "exp"
    train_ids = read_id_list(exp / "train_id.txt") + read_id_list(exp / "val_id.txt")
    if len(set(train_ids)) != len(train_ids):
        raise DatasetError(f"{exp}: train_id.txt and val_id.txt share ids (expected disjoint id lists)")
    test_ids = set(read_id_list(exp / "test_id.txt"))
    images = _images_by_person(path)

    labels = {pid: i for i, pid in enumerate(train_ids)}
    for pid in train_ids:
        if pid not in images:
            raise DatasetError(f"{exp}: training id {pid} has no images in any of {path}/cam1..cam6/{pid:04d}/")
    train = [Sample(p, pid, cam, camera_modality(cam), labels[pid]) for pid in train_ids for p, cam in images[pid]]
    test = [Sample(p, pid, cam, camera_modality(cam)) for pid in test_ids if pid in images for p, cam in images[pid]]
    train.sort(key=lambda s: s.path)
    test.sort(key=lambda s: s.path)
    test_visible = [s for s in test if s.modality == VISIBLE]
    test_infrared = [s for s in test if s.modality == INFRARED]
    return VIDataset(
        name="sysu",
        root=str(path),
        train=train,
        test_visible=require_samples(test_visible, path, "visible images (cam1, 2, 4, 5) of the test ids"),
        test_infrared=require_samples(test_infrared, path, "infrared images (cam3, 6) of the test ids"),
        meta={"rand_perm_cam": str(exp / "rand_perm_cam.mat"), "test_ids": sorted(test_ids),
              "test_id_file": str(exp / "test_id.txt")},
    )


def _images_by_person(root: Path) -> dict[int, list[tuple[str, int]]]:
    """{pid: [(image path, camera), ...]} over cam1..cam6; folders that are not numbers are ignored."""
    found: dict[int, list[tuple[str, int]]] = {}
    for cam in CAMERAS:
        cam_dir = require_dir(root / f"cam{cam}", f"camera {cam} of {LAYOUT}")
        for person in cam_dir.iterdir():
            if person.name.isdigit() and person.is_dir():
                paths = list_images(person, (".jpg",))
                found.setdefault(int(person.name), []).extend((str(p), cam) for p in paths)
    return {pid: files for pid, files in found.items() if files}


def camera_modality(camera: int) -> int:
    """Cameras 3 and 6 are the infrared ones."""
    return INFRARED if camera in INFRARED_CAMERAS else VISIBLE


def is_sysu_root(folder: str | os.PathLike) -> bool:
    """Whether `folder` is laid out as SYSU-MM01 (cam1..cam6 and exp/ folders), so its cameras tell modalities."""
    path = Path(folder)
    return (path / "exp").is_dir() and all((path / f"cam{cam}").is_dir() for cam in CAMERAS)
