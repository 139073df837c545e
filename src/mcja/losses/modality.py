"""Camera ids to modality labels (0 visible, 1 infrared) for the datasets whose cameras decide modality."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

VISIBLE, INFRARED = 0, 1

# RegDB: camera 1 is the visible image, camera 2 the thermal one (our RegDB reader's convention).
CAMERA_MODALITY = {
    "sysu": {1: VISIBLE, 2: VISIBLE, 3: INFRARED, 4: VISIBLE, 5: VISIBLE, 6: INFRARED},
    "regdb": {1: VISIBLE, 2: INFRARED},
}


def camera_to_modality(dataset: str, cameras: Tensor | np.ndarray | Sequence[int]) -> Tensor | np.ndarray:
    """Modality label per 1-based camera id: a LongTensor (same device) for a tensor, an int64 array otherwise.

    Raises ValueError naming an unknown dataset or a camera the dataset does not have.
    """
    table = CAMERA_MODALITY.get(dataset.lower())
    if table is None:
        raise ValueError(f"no camera-to-modality map for dataset '{dataset}': expected one of {', '.join(CAMERA_MODALITY)}")
    ids = cameras.detach().cpu().numpy() if isinstance(cameras, Tensor) else np.asarray(cameras)
    unknown = sorted({int(c) for c in np.unique(ids)} - table.keys())
    if unknown:
        raise ValueError(f"dataset '{dataset}' has no camera(s) {unknown}: expected {sorted(table)}")
    lookup = np.zeros(max(table) + 1, dtype=np.int64)
    for camera, modality in table.items():
        lookup[camera] = modality
    labels = lookup[ids.astype(np.int64)]
    return torch.from_numpy(labels).to(cameras.device) if isinstance(cameras, Tensor) else labels
