"""Identity cross-entropy and camera-to-modality labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mcja.losses import camera_to_modality, identity_loss


def test_identity_loss_is_float32_cross_entropy():
    logits = torch.tensor([[0.0, math.log(3.0)], [2.0, 2.0]]).bfloat16()
    loss = identity_loss(logits, torch.tensor([1, 0]))
    assert loss.dtype == torch.float32
    # row 1: p(1) = 3/4; row 2: p(0) = 1/2
    assert loss.item() == pytest.approx((-math.log(0.75) - math.log(0.5)) / 2, rel=1e-2)


def test_sysu_and_regdb_cameras():
    assert camera_to_modality("sysu", [1, 2, 3, 4, 5, 6]).tolist() == [0, 0, 1, 0, 0, 1]
    labels = camera_to_modality("regdb", np.array([2, 1, 1]))
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0, 0]
    as_tensor = camera_to_modality("sysu", torch.tensor([3, 5]))
    assert as_tensor.dtype == torch.long and as_tensor.tolist() == [1, 0]


def test_unknown_dataset_or_camera_is_named():
    with pytest.raises(ValueError, match="'llcm'"):
        camera_to_modality("llcm", [1])
    with pytest.raises(ValueError, match=r"\[3, 7\]"):
        camera_to_modality("regdb", [1, 3, 7])
