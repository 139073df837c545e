"""Checkpoint I/O: our self-describing payload, and the reference code's raw state dicts (names mapped both ways)."""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

from torch import Tensor

from mcja.errors import CheckpointError, ConfigError
from mcja.models.mcja import MCJA
from mcja.models.reader import FORMAT, Checkpoint, read_checkpoint
from mcja.models.resnet import RESNET_LAYOUTS, STAGES
from mcja.models.weights import load_state_strict, preview_keys

VERSION = 1
ARCH_KEYS = ("num_classes", "depth", "last_stride", "mda_layers", "mda_contexts")
# Prefixes that DataParallel/DistributedDataParallel and torch.compile add to every key.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Reference MDA submodule name -> ours.
_MDA_NAMES = {"sc_conv": "mask_conv", "ca_conv": "context_conv", "ca_bn": "gate_bn", "norm_bn": "out_bn"}
_REF_MDA_KEY = re.compile(r"^MDA_([1-4])\.(\d+)\.(sc_conv|ca_conv|ca_bn|norm_bn)\.(.+)$")
_OUR_MDA_KEY = re.compile(r"^mda\.layer([1-4])\.(\d+)\.(mask_conv|context_conv|gate_bn|out_bn)\.(.+)$")


def checkpoint_payload(model: MCJA, **extra: Any) -> dict[str, Any]:
    """Everything `load_model` needs (format, version, arch, state dict) plus the caller's `extra` entries."""
    clash = set(extra) & {"format", "version", "arch", "state_dict"}
    if clash:
        raise TypeError(f"checkpoint_payload: extra entries may not replace {sorted(clash)}")
    return {"format": FORMAT, "version": VERSION, "arch": dict(model.arch), "state_dict": model.state_dict(), **extra}


def to_reference_state_dict(our_sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename our keys to the reference code's (`mda.layer2.0.mask_conv.*` -> `MDA_2.0.sc_conv.*`)."""
    ours_to_ref = {v: k for k, v in _MDA_NAMES.items()}
    out = {}
    for key, value in our_sd.items():
        m = _OUR_MDA_KEY.match(key)
        out[f"MDA_{m[1]}.{m[2]}.{ours_to_ref[m[3]]}.{m[4]}" if m else key] = value
    return out


def from_reference_state_dict(
    sd: Mapping[str, Tensor], *, last_stride: int = 2, source: str = "state dict"
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(arch, our state dict) from a reference state dict; `backbone.fc.*` is dropped, our own key names pass through.

    The stride of layer4 leaves no trace in the weights: pass `last_stride=1` for a "drop last stride" model.
    """
    ours = {}
    for key, value in _strip_wrappers(sd).items():
        if key.startswith("backbone.fc."):
            continue  # the reference keeps torchvision's ImageNet head but never uses it
        m = _REF_MDA_KEY.match(key)
        ours[f"mda.layer{m[1]}.{m[2]}.{_MDA_NAMES[m[3]]}.{m[4]}" if m else key] = value
    return _infer_arch(ours, last_stride, source), ours


def load_model(path: str | os.PathLike | Checkpoint, map_location: Any = "cpu") -> MCJA:
    """An MCJA in eval mode from our checkpoint or a reference-code state dict (a path, or a file already read
    with `read_checkpoint`); CheckpointError if neither fits."""
    ckpt = read_checkpoint(path, map_location)
    source, obj = str(ckpt.path), ckpt.content
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        arch, state = _payload_parts(obj, source)
    else:
        arch, state = from_reference_state_dict(_unwrap(obj, source), source=source)
    try:
        model = MCJA(**arch)
    except (ConfigError, TypeError, ValueError) as err:
        raise CheckpointError(f"{source}: its architecture cannot be built ({err})") from None
    summary = f"MCJA ResNet-{arch['depth']}, {arch['num_classes']} ids, MDA {arch['mda_layers']} x{arch['mda_contexts']}"
    load_state_strict(model, state, source=source, what=summary)
    return model.eval()


def _payload_parts(obj: Mapping[str, Any], source: str) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(arch, state dict) of our own checkpoint, after checking its version and arch entries."""
    if not isinstance(obj.get("version"), int) or obj["version"] > VERSION:
        raise CheckpointError(f"{source}: checkpoint format version {obj.get('version')!r}; this mcja reads {VERSION}")
    arch, state = obj.get("arch"), obj.get("state_dict")
    if not isinstance(arch, Mapping) or any(k not in arch for k in ARCH_KEYS) or not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: mcja checkpoint without a complete 'arch' ({', '.join(ARCH_KEYS)}) and 'state_dict'")
    return {k: arch[k] for k in ARCH_KEYS}, _strip_wrappers(state)


def _unwrap(obj: Any, source: str) -> dict[str, Tensor]:
    """The state dict inside a raw file: the file itself, or its 'state_dict' / 'model' entry."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        found = f"keys {preview_keys([str(k) for k in obj])}" if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(f"{source}: not a checkpoint: expected an mcja checkpoint or a state dict of tensors, found {found}")
    return dict(obj)


def _strip_wrappers(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop a prefix that every key shares because the model was wrapped (DDP, torch.compile) when saved."""
    sd = dict(sd)
    while sd:
        prefix = next((p for p in _WRAPPER_PREFIXES if all(k.startswith(p) for k in sd)), None)
        if prefix is None:
            break
        sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _infer_arch(sd: Mapping[str, Tensor], last_stride: int, source: str) -> dict[str, Any]:
    """Depth, classes, MDA placement and contexts, read off the tensors' names and shapes (our key names)."""
    required = ("backbone.conv1.weight", "classifier.weight")
    missing = [k for k in required if k not in sd]
    if missing:
        raise CheckpointError(
            f"{source}: not an MCJA checkpoint; missing keys: {', '.join(missing)}; found keys: {preview_keys(list(sd))}"
        )
    kind = "bottleneck" if "backbone.layer1.0.conv3.weight" in sd else "basic"
    blocks = tuple(_count_indexed(sd, f"backbone.{stage}.") for stage in STAGES)
    depth = next((d for d, layout in RESNET_LAYOUTS.items() if layout == (kind, blocks)), None)
    if depth is None:
        raise CheckpointError(f"{source}: backbone with {kind} blocks {list(blocks)} is not a ResNet-18/34/50")
    contexts = next((v.shape[0] for k, v in sd.items() if k.endswith(".mask_conv.weight")), 2)
    return {
        "num_classes": int(sd["classifier.weight"].shape[0]),
        "depth": depth,
        "last_stride": last_stride,
        "mda_layers": [_count_indexed(sd, f"mda.{stage}.") for stage in STAGES],
        "mda_contexts": int(contexts),
    }


def _count_indexed(sd: Mapping[str, Tensor], prefix: str) -> int:
    """1 + the largest index i among keys `prefix + "i.*"` (0 if none): blocks in a stage, MDAs after it."""
    heads = [k[len(prefix):].split(".", 1)[0] for k in sd if k.startswith(prefix)]
    indices = [int(h) for h in heads if h.isdigit()]
    return max(indices) + 1 if indices else 0

