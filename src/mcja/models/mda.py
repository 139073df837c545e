"""Modality Distribution Adapter (MDA): a channel gate computed from M attention-pooled contexts."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mcja.errors import ConfigError


class MDA(nn.Module):
    """out = BN2d(x * g) + x with g = sigmoid(BN1d(depthwise-conv over M contexts)); the identity at init."""

    def __init__(self, channels: int, contexts: int = 2) -> None:
        super().__init__()
        if contexts < 1:
            raise ConfigError(f"model.mda_contexts: expected a positive number of contexts, got {contexts!r}")
        self.channels, self.contexts = channels, contexts
        # Reference names, in order: sc_conv, ca_conv, ca_bn, norm_bn (see checkpoint.py for the mapping).
        self.mask_conv = nn.Conv2d(channels, contexts, kernel_size=1)
        self.context_conv = nn.Conv1d(channels, channels, kernel_size=contexts, groups=channels, bias=False)
        self.gate_bn = nn.BatchNorm1d(channels)
        self.out_bn = nn.BatchNorm2d(channels)
        # A zero-scaled output norm makes a fresh block the identity, so inserting it leaves a pretrained trunk intact.
        nn.init.zeros_(self.out_bn.weight)
        nn.init.zeros_(self.out_bn.bias)

    def forward(self, x: Tensor) -> Tensor:
        masks = torch.softmax(self.mask_conv(x).flatten(2), dim=-1)  # [B, M, HW], each mask sums to 1
        contexts = torch.bmm(x.flatten(2), masks.transpose(1, 2))  # [B, C, M]
        gate = torch.sigmoid(self.gate_bn(self.context_conv(contexts)))  # [B, C, 1]
        return self.out_bn(x * gate.unsqueeze(-1)) + x
