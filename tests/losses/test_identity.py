"""Identity cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch

from mcja.losses import identity_loss


def test_identity_loss_is_float32_cross_entropy():
    logits = torch.tensor([[0.0, math.log(3.0)], [2.0, 2.0]]).bfloat16()
    loss = identity_loss(logits, torch.tensor([1, 0]))
    assert loss.dtype == torch.float32
    # row 1: p(1) = 3/4; row 2: p(0) = 1/2
    assert loss.item() == pytest.approx((-math.log(0.75) - math.log(0.5)) / 2, rel=1e-2)

