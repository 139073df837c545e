"""Identity (classification) loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def identity_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of identity logits [B, C] against labels [B], in float32 whatever the logits' dtype."""
    return F.cross_entropy(logits.float(), labels)
