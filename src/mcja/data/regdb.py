"""RegDB in its published layout: Visible/<pid>/*.bmp, Thermal/<pid>/*.bmp and idx/{train,test}_{visible,thermal}_K.txt.

Trial K (1..10) reads the four index files of split K. The person id is the image's folder name
(the labels in the index files are only positions within that split); training labels are the
training person ids in increasing order, 0..N-1. Camera 1 is visible, camera 2 thermal.
"""

from __future__ import annotations

import os
from pathlib import Path

from mcja.data.layout import folder_pid, label_by_sorted_pid, read_index, require_root, require_samples
from mcja.data.records import INFRARED, VISIBLE, Sample, VIDataset

VISIBLE_CAMERA = 1
THERMAL_CAMERA = 2
LAYOUT = "a RegDB folder with Visible/, Thermal/ and idx/train_visible_K.txt etc."


def read_regdb(root: str | os.PathLike, trial: int = 1) -> VIDataset:
    """Read split `trial` of RegDB from `root`: train, test_visible (visible gallery/query), test_infrared."""
    path = require_root(root, LAYOUT)
    idx = path / "idx"
    train = _read_split(idx / f"train_visible_{trial}.txt", path, VISIBLE) + _read_split(
        idx / f"train_thermal_{trial}.txt", path, INFRARED
    )
    return VIDataset(
        name="regdb",
        root=str(path),
        train=label_by_sorted_pid(train),
        test_visible=_read_split(idx / f"test_visible_{trial}.txt", path, VISIBLE),
        test_infrared=_read_split(idx / f"test_thermal_{trial}.txt", path, INFRARED),
        meta={"trial": trial},
    )


def _read_split(index: Path, root: Path, modality: int) -> list[Sample]:
    """The records an index file lists, in its order; the modality comes from which file it is."""
    camera = VISIBLE_CAMERA if modality == VISIBLE else THERMAL_CAMERA
    samples = [
        Sample(str(image), folder_pid(image, f"{index} line {number}"), camera, modality)
        for number, image, _ in read_index(index, root)
    ]
    return require_samples(samples, index, "images listed")
