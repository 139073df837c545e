"""Reading weight files: torchvision's ImageNet ResNets (hub cache, URL or local path) and strict loading."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from mcja.errors import CheckpointError
from mcja.models.reader import read_torch_file
from mcja.models.resnet import ResNet, resnet_layout

TORCHVISION_URL = "https://download.pytorch.org/models/"
# torchvision's V1 ImageNet files, first choice first; resnet50-19c8e357 is the one the reference trains from.
IMAGENET_FILES: dict[int, tuple[str, ...]] = {
    18: ("resnet18-f37072fd.pth", "resnet18-5c106cde.pth"),
    34: ("resnet34-b627a593.pth", "resnet34-333f7ec4.pth"),
    50: ("resnet50-19c8e357.pth", "resnet50-0676ba61.pth"),
}
_KEYS_SHOWN = 6


def init_backbone(backbone: ResNet, pretrained: str) -> None:
    """Load ImageNet weights ("imagenet", or a file with torchvision key names) into a backbone; `fc.*` is ignored."""
    path = None if pretrained.lower() == "imagenet" else pretrained
    state, source = _imagenet_state(backbone.depth, path)
    trunk = {k: v for k, v in state.items() if not k.startswith("fc.")}
    load_state_strict(backbone, trunk, source=source, what=f"ResNet-{backbone.depth}")


def _imagenet_state(depth: int, path: str | os.PathLike | None) -> tuple[dict[str, Tensor], str]:
    """(state dict, where it came from), trying `path`, then the hub cache, then torchvision's URL."""
    resnet_layout(depth)  # rejects unsupported depths with a ConfigError
    if path is not None:
        return _as_state_dict(read_torch_file(path), str(path)), str(path)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for name in IMAGENET_FILES[depth]:
        if (folder / name).is_file():
            return _as_state_dict(read_torch_file(folder / name), str(folder / name)), str(folder / name)
    name = IMAGENET_FILES[depth][0]
    try:
        state = torch.hub.load_state_dict_from_url(TORCHVISION_URL + name, model_dir=str(folder), check_hash=True,
                                                   weights_only=True)
    except Exception as err:  # offline machines fail in many ways (DNS, proxy, SSL, partial file, hash)
        raise CheckpointError(
            f"no ImageNet weights for ResNet-{depth}: put {name} (from {TORCHVISION_URL}{name}) in {folder}/, "
            f"or give a file with model.pretrained=PATH; model.pretrained=none starts from random weights "
            f"(download failed: {type(err).__name__})"
        ) from None
    return _as_state_dict(state, str(folder / name)), str(folder / name)


def _as_state_dict(obj: Any, source: str) -> dict[str, Tensor]:
    if not isinstance(obj, Mapping) or not any(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{source}: expected a state dict of tensors, found {type(obj).__name__}")
    return dict(obj)


def load_state_strict(module: nn.Module, state_dict: Mapping[str, Tensor], source: str, what: str) -> None:
    """Load `state_dict` into `module`; any missing, unexpected or mis-shaped key raises one CheckpointError."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mis_shaped = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(getattr(state_dict[k], "shape", ())) != tuple(v.shape)
    ]
    problems = [
        f"{label}: {preview_keys(keys)}"
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", mis_shaped))
        if keys
    ]
    if problems:
        raise CheckpointError(f"{source}: does not fit {what}; " + "; ".join(problems))
    module.load_state_dict(dict(state_dict), strict=True)


def preview_keys(keys: list[str]) -> str:
    """The first few keys and how many more, so the error stays one readable line."""
    shown = ", ".join(keys[:_KEYS_SHOWN])
    return shown + (f" (+{len(keys) - _KEYS_SHOWN} more)" if len(keys) > _KEYS_SHOWN else "")
