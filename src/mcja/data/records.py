"""What every dataset reader returns: image records and the splits of a VI-ReID dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

VISIBLE = 0
INFRARED = 1
MODALITY_BY_CODE = {VISIBLE: "visible", INFRARED: "infrared"}  # the names results and labels are shown with


@dataclass(frozen=True)
class Sample:
    """One image: its path, the dataset's own person id, 1-based camera id and modality (0 visible, 1 infrared).

    `label` is the training label 0..N-1 for training records and -1 elsewhere.
    """

    path: str
    pid: int
    camera: int
    modality: int
    label: int = -1


@dataclass
class VIDataset:
    """A VI-ReID dataset: training records, and the test images of each modality.

    The evaluation protocol decides which test side is the query and which the gallery
    (SYSU-MM01: infrared queries; RegDB and LLCM: both directions).
    `meta` holds protocol inputs, e.g. {"rand_perm_cam": path} for SYSU-MM01.
    """

    name: str
    root: str
    train: list[Sample]
    test_visible: list[Sample]
    test_infrared: list[Sample]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_train_ids(self) -> int:
        """Number of training identities (labels are 0..num_train_ids-1)."""
        return len({s.label for s in self.train})


def columns(samples: Sequence[Sample]) -> dict[str, np.ndarray]:
    """The records as arrays: paths (object), pids, cameras, modalities, labels (int64)."""
    return {
        "paths": np.array([s.path for s in samples], dtype=object),
        "pids": np.array([s.pid for s in samples], dtype=np.int64),
        "cameras": np.array([s.camera for s in samples], dtype=np.int64),
        "modalities": np.array([s.modality for s in samples], dtype=np.int64),
        "labels": np.array([s.label for s in samples], dtype=np.int64),
    }
