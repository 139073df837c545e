"""LLCM in its published layout (as the DEEN authors' code reads it): idx/, vis/, nir/, test_vis/, test_nir/.

Training images are those the two index files list (`vis/<pid>/<pid>_cNN_..._vis.jpg <label>`):
person id from the folder, camera from the `_cNN_` token; training labels are the person ids in
increasing order, 0..N-1, shared by both modalities. Test images are every image of the ids in
idx/test_id.txt under test_vis/camN/<pid:04d>/ and test_nir/camN/<pid:04d>/, ordered by id, then
camera, then file name, as the DEEN code lists them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mcja.data.layout import (
    folder_pid,
    label_by_sorted_pid,
    list_images,
    read_id_list,
    read_index,
    require_dir,
    require_root,
    require_samples,
)
from mcja.data.records import INFRARED, VISIBLE, Sample, VIDataset
from mcja.errors import DatasetError

LAYOUT = "an LLCM folder with idx/train_vis.txt, idx/train_nir.txt, idx/test_id.txt, test_vis/ and test_nir/"
_CAMERA_TOKEN = re.compile(r"_c(\d+)_")
CAMERA_FOLDER = re.compile(r"cam(\d+)")  # test_vis/camN/, test_nir/camN/
TEST_VISIBLE, TEST_INFRARED = "test_vis", "test_nir"  # the test images' folders
TEST_FOLDERS = {TEST_VISIBLE: VISIBLE, TEST_INFRARED: INFRARED}


def read_llcm(root: str | os.PathLike) -> VIDataset:
    """Read LLCM from `root`: training records from the index files, test records from the test folders."""
    path = require_root(root, LAYOUT)
    idx = path / "idx"
    train = _read_train(idx / "train_vis.txt", path, VISIBLE) + _read_train(idx / "train_nir.txt", path, INFRARED)
    test_ids = sorted(read_id_list(idx / "test_id.txt"))
    return VIDataset(
        name="llcm",
        root=str(path),
        train=label_by_sorted_pid(train),
        test_visible=_read_test(path / TEST_VISIBLE, test_ids, VISIBLE),
        test_infrared=_read_test(path / TEST_INFRARED, test_ids, INFRARED),
        meta={"test_ids": test_ids, "test_id_file": str(idx / "test_id.txt")},
    )


def _read_train(index: Path, root: Path, modality: int) -> list[Sample]:
    """The training records one index file lists; the camera is the `_cNN_` token of the file name."""
    samples = []
    for number, image, _ in read_index(index, root):
        where = f"{index} line {number}"
        camera = _CAMERA_TOKEN.search(image.name)
        if camera is None:
            raise DatasetError(f"{where}: expected a camera token '_cNN_' in the file name: {image}")
        samples.append(Sample(str(image), folder_pid(image, where), int(camera.group(1)), modality))
    return require_samples(samples, index, "images listed")


def _read_test(folder: Path, test_ids: list[int], modality: int) -> list[Sample]:
    """All images of the test ids under folder/camN/<pid:04d>/, id-major as the DEEN code orders them."""
    cameras = sorted(
        int(m.group(1)) for d in require_dir(folder, "camN/<pid>/ folders of test images").iterdir()
        if d.is_dir() and (m := CAMERA_FOLDER.fullmatch(d.name))
    )
    samples = [
        Sample(str(image), pid, cam, modality)
        for pid in test_ids
        for cam in cameras
        for image in list_images(folder / f"cam{cam}" / f"{pid:04d}")
    ]
    return require_samples(samples, folder, "images of the ids in idx/test_id.txt")
