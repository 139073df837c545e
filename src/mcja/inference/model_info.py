"""What `mcja model-info` reports: a network built (random weights) or loaded, its size and forward time."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Sequence

import torch

from mcja.input_size import DEFAULT_IMAGE_SIZE
from mcja.models import MCJA, count_parameters, load_model
from mcja.models.reader import read_checkpoint, resolve_image_size


def time_forward(model: Any, x: Any, runs: int) -> tuple[Any, list[float]]:
    """The output of `model(x)` and the milliseconds of each of `runs` timed forwards after it (that first,
    untimed call is the warm-up: it pays one-off allocation costs)."""
    times = []
    with torch.inference_mode():
        out = model(x)
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1000)
    return out, times


def model_info(checkpoint: str | os.PathLike | None = None, depth: int = 50, classes: int = 395, contexts: int = 2,
               image_size: Sequence[int] | None = None, runs: int = 5) -> dict[str, Any]:
    """Depth, parameters, MDA placement, feature size, output shape and forward times (ms, batch 1, CPU) of one
    model: the checkpoint's (at its own input size unless `image_size`), else a random-weight MCJA."""
    if checkpoint:
        ckpt = read_checkpoint(checkpoint)  # once, weights-only
        model, origin = load_model(ckpt), f"checkpoint {checkpoint}"
        size = resolve_image_size(ckpt, image_size)  # the size the model was trained and tested at
    else:
        model = MCJA(classes, depth=depth, mda_contexts=contexts).eval()
        origin, size = "random weights (no checkpoint)", image_size or DEFAULT_IMAGE_SIZE
    x = torch.randn(1, 3, *size)
    out, times = time_forward(model, x, runs)
    return {
        "origin": origin,
        "arch": model.arch,
        "mda_placement": model.mda_placement,
        "parameters": count_parameters(model),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "feature_dim": model.feature_dim,
        "input_shape": list(x.shape),
        "output_shape": list(out.shape),
        "forward_ms": times,
        "median_ms": statistics.median(times),
        "threads": torch.get_num_threads(),
    }
