"""`mcja export`: the eval network as an ONNX graph, checked against PyTorch with onnxruntime when installed.

Graph: input `images` float32 [B, 3, H, W] (normalised), output `features` float32 [B, D]: the BN-neck output
that `model(x)` returns in eval mode, not L2-normalised. Preprocessing for users of the file (as in testing):
RGB; resize to H x W with bilinear filtering (PIL's, to match exactly); scale to 0..1 (/255); per channel
subtract mean (0.485, 0.456, 0.406) and divide by std (0.229, 0.224, 0.225); channels first. L2-normalise
the features before comparing them by cosine. The same facts are stored in the file's metadata.

Exporter: torch's TorchScript exporter (`dynamo=False`). torch 2.13's default torch.export-based exporter
needs onnxscript, takes about 8x longer, and its graph optimiser drops GeM's "+ 1e-12", so pooled channels
that are 0 come out 0 instead of 1e-4 (a 1e-4 mismatch); the TorchScript graph matches PyTorch to ~3e-6.
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

import numpy as np
import torch

from mcja.data.augment import IMAGENET_MEAN, IMAGENET_STD, normalize
from mcja.errors import ConfigError, MCJAError
from mcja.models import load_model
from mcja.models.reader import read_checkpoint, resolve_image_size
from mcja.utils.io import atomic_path, ensure_writable_file

DEFAULT_OPSET = 17
OPSETS = range(11, 21)  # what the TorchScript exporter writes
TOLERANCE = 1e-4
INPUT_NAME, OUTPUT_NAME = "images", "features"


def require_module(name: str) -> ModuleType:
    """Import an optional dependency of the `onnx` extra, or say how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MCJAError(f"this needs the '{name}' package of the onnx extra: pip install 'mcja[onnx]'") from None


def export_onnx(
    checkpoint: str | os.PathLike,
    onnx_path: str | os.PathLike,
    image_size: Sequence[int] | None = None,
    dynamic_batch: bool = False,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    tolerance: float = TOLERANCE,
) -> dict[str, Any]:
    """Write the ONNX graph of `checkpoint` to `onnx_path` atomically, after an onnxruntime parity check
    (when onnxruntime is installed and `check`); a difference above `tolerance` raises and writes nothing."""
    onnx = require_module("onnx")
    if opset not in OPSETS:
        raise ConfigError(f"--opset {opset}: the exporter writes opsets {OPSETS.start}..{OPSETS.stop - 1}")
    ensure_writable_file(onnx_path, "--onnx")
    ckpt = read_checkpoint(checkpoint)  # once, weights-only
    model = load_model(ckpt)
    size = resolve_image_size(ckpt, image_size)
    with atomic_path(onnx_path) as tmp:
        _torch_export(model, sample_input(2 if dynamic_batch else 1, size), tmp, dynamic_batch, opset)
        _finish_graph(onnx, tmp, size, model.feature_dim)
        onnx.checker.check_model(str(tmp))
        # a batch other than the traced one shows the batch axis really is dynamic
        parity = check_parity(model, tmp, batch=3 if dynamic_batch else 1) if check else {"status": "not run"}
        if parity.get("max_abs_diff", 0.0) > tolerance:
            raise MCJAError(f"{onnx_path}: not written: ONNX output differs from PyTorch by "
                            f"{parity['max_abs_diff']:.2e} (more than {tolerance:g})")
    h, w = size
    return {
        "onnx": str(onnx_path),
        "input": f"{INPUT_NAME} float32 [{'B' if dynamic_batch else 1}, 3, {h}, {w}], normalised",
        "output": f"{OUTPUT_NAME} float32 [{'B' if dynamic_batch else 1}, {model.feature_dim}], not L2-normalised",
        "opset": opset,
        "parity": parity,
    }


def sample_input(batch: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """Random images normalised as in testing: realistic input values for tracing and parity checks."""
    g = torch.Generator().manual_seed(seed)
    return normalize(torch.randint(0, 256, (batch, 3, *size), generator=g, dtype=torch.uint8))


def check_parity(model: torch.nn.Module, onnx_file: str | os.PathLike, batch: int) -> dict[str, Any]:
    """Max abs difference between onnxruntime (CPU) and PyTorch on random normalised images."""
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        return {"status": "skipped: onnxruntime is not installed (pip install 'mcja[onnx]')"}
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    x = sample_input(batch, tuple(session.get_inputs()[0].shape[2:]), seed=1)
    with torch.inference_mode():
        expected = model(x).numpy()
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    return {"status": "checked", "batch": batch, "max_abs_diff": float(np.abs(got - expected).max())}


def _torch_export(model: torch.nn.Module, example: torch.Tensor, path: Path, dynamic_batch: bool, opset: int) -> None:
    """torch.onnx.export with the TorchScript exporter (see the module docstring for why)."""
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        # torch 2.13 flags this exporter as deprecated on every call; the choice is deliberate (module docstring).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model.eval(), (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=axes)


def _finish_graph(onnx: ModuleType, path: Path, size: tuple[int, int], feature_dim: int) -> None:
    """State the output's feature size (the exporter leaves it symbolic) and record the preprocessing in the file."""
    proto = onnx.load(str(path))
    proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value = feature_dim
    h, w = size
    notes = {
        "mcja.input": f"RGB, resized to {h}x{w} (bilinear), /255, minus mean {IMAGENET_MEAN}, divided by std "
                      f"{IMAGENET_STD}, channels first [B, 3, {h}, {w}]",
        "mcja.output": "BN-neck features; L2-normalise before cosine comparison",
    }
    for key, value in notes.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
