"""The MCJA network: ResNet with MDA blocks, GeM pooling, BN-neck and a bias-free identity classifier."""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from mcja.errors import ConfigError
from mcja.models.mda import MDA
from mcja.models.resnet import STAGES, build_resnet, resnet_layout
from mcja.models.weights import init_backbone


class MCJAOutput(NamedTuple):
    """What the losses need in train mode: BN-neck features [B, D] and identity logits [B, num_classes]."""

    features: Tensor
    logits: Tensor


class MCJA(nn.Module):
    """Backbone + MDA + GeM + BN-neck + classifier; eval mode returns the BN-neck features [B, feature_dim].

    `pretrained`: None/"none" (random), "imagenet" (torchvision V1 file) or a path to a torchvision-layout file.
    `arch` holds the constructor arguments that rebuild the model (MDA counts already clipped to the backbone).
    """

    def __init__(
        self,
        num_classes: int,
        depth: int = 50,
        last_stride: int = 2,
        mda_layers: Sequence[int] = (0, 2, 3, 0),
        mda_contexts: int = 2,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        _, blocks = resnet_layout(depth)
        counts = _mda_counts(mda_layers, blocks)
        if int(num_classes) < 1:
            raise ConfigError(f"model.num_classes: expected a positive number of identities, got {num_classes!r}")
        self.backbone = build_resnet(depth, last_stride=last_stride, with_fc=False)
        self.mda = nn.ModuleDict()
        for stage, n, width in zip(STAGES, counts, self.backbone.stage_channels):
            if n:
                self.mda[stage] = nn.ModuleList(MDA(width, mda_contexts) for _ in range(n))
        self.feature_dim = self.backbone.out_channels
        self.bn_neck = nn.BatchNorm1d(self.feature_dim)
        self.bn_neck.bias.requires_grad_(False)  # the neck's shift stays 0 (spec), so it is never trained
        self.classifier = nn.Linear(self.feature_dim, int(num_classes), bias=False)
        self.arch: dict[str, Any] = {
            "num_classes": int(num_classes),
            "depth": int(depth),
            "last_stride": int(last_stride),
            "mda_layers": counts,
            "mda_contexts": int(mda_contexts),
        }
        if pretrained is not None and str(pretrained).lower() not in ("none", ""):
            init_backbone(self.backbone, str(pretrained))

    @property
    def mda_placement(self) -> dict[str, list[int]]:
        """Stage name -> indices of the blocks followed by an MDA (the last n blocks of the stage)."""
        placement = {}
        for stage, adapters in self.mda.items():
            n_blocks = len(getattr(self.backbone, stage))
            placement[stage] = list(range(n_blocks - len(adapters), n_blocks))
        return placement

    def feature_map(self, x: Tensor) -> Tensor:
        """Backbone output with each MDA applied after its block: [B, feature_dim, h, w]."""
        x = self.backbone.stem(x)
        for stage in STAGES:
            blocks = getattr(self.backbone, stage)
            adapters = self.mda[stage] if stage in self.mda else []
            first = len(blocks) - len(adapters)
            for i, block in enumerate(blocks):
                x = block(x)
                if i >= first:
                    x = adapters[i - first](x)
        return x

    def forward(self, x: Tensor) -> Tensor | MCJAOutput:
        """Eval: BN-neck features [B, D]. Train: MCJAOutput(features, logits)."""
        features = self.bn_neck(gem(self.feature_map(x)))
        if not self.training:
            return features
        return MCJAOutput(features, self.classifier(features))


def gem(x: Tensor, p: float = 3.0, eps: float = 1e-12) -> Tensor:
    """Generalised-mean pooling over positions, (mean x^p + eps)^(1/p), without clamping (spec)."""
    # At least float32 even under autocast: cubes of bf16/fp16 activations lose precision or overflow.
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    return (x.flatten(2).pow(p).mean(dim=-1) + eps).pow(1.0 / p)


def _mda_counts(mda_layers: Sequence[int], blocks: Sequence[int]) -> list[int]:
    """MDA blocks per stage, clipped to the stage's block count (shallower backbones have fewer blocks)."""
    counts = [int(n) for n in mda_layers]
    if len(counts) != 4 or min(counts) < 0:
        raise ConfigError(f"model.mda_layers: expected 4 non-negative counts (one per stage), got {list(mda_layers)}")
    return [min(n, b) for n, b in zip(counts, blocks)]


def count_parameters(module: nn.Module) -> int:
    """Number of parameter elements, frozen ones included (the figure papers and the reference quote)."""
    return sum(p.numel() for p in module.parameters())
