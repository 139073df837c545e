"""Verbs of the 'model' group: `model-info` builds or loads a network and prints its summary."""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from mcja.commands.common import add_verb, model_size, positive_int, size_help

EXAMPLES = """
  mcja model-info                                    # ResNet-50 MCJA, SYSU-MM01 setting, random init
  mcja model-info --depth 18 --size 128x64          # a small, fast model
  mcja model-info --classes 206 --contexts 12        # RegDB setting
  mcja model-info --checkpoint runs/sysu/best.pt     # ours or a reference-code state dict, at its own input size
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's verbs to the `mcja` parser."""
    p = add_verb(sub, "model-info", "Build (random weights) or load an MCJA model and print a summary.", EXAMPLES)
    p.add_argument("--depth", type=int, default=50, choices=(18, 34, 50), help="ResNet depth (default 50)")
    p.add_argument("--classes", type=int, default=395, help="training identities (default 395, SYSU-MM01)")
    p.add_argument("--contexts", type=int, default=2, help="MDA contexts M (default 2; RegDB uses 12)")
    p.add_argument("--size", type=model_size, default=None,
                   help=size_help("input HxW for the timed forward"))
    p.add_argument("--runs", type=positive_int, default=5, help="timed forwards after one warm-up (default 5)")
    p.add_argument("--checkpoint", help="load this checkpoint instead (--depth/--classes/--contexts are then ignored)")
    p.set_defaults(func=model_info)


def time_forward(model: Any, x: Any, runs: int) -> tuple[Any, list[float]]:
    """The output of `model(x)` and the milliseconds of each of `runs` timed forwards after it (that first,
    untimed call is the warm-up: it pays one-off allocation costs)."""
    import torch

    times = []
    with torch.inference_mode():
        out = model(x)
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1000)
    return out, times


def model_info(args: argparse.Namespace) -> int:
    """Print depth, parameters, MDA placement, feature size, output shape and forward time of one model."""
    import torch

    from mcja.inference.extractor import DEFAULT_SIZE, resolve_image_size
    from mcja.models import MCJA, count_parameters, load_model
    from mcja.models.reader import read_checkpoint

    if args.checkpoint:
        ckpt = read_checkpoint(args.checkpoint)  # once, weights-only
        model, origin = load_model(ckpt), f"checkpoint {args.checkpoint}"
        size = resolve_image_size(ckpt, args.size)  # the size the model was trained and tested at
    else:
        model = MCJA(args.classes, depth=args.depth, mda_contexts=args.contexts).eval()
        origin, size = "random weights (no checkpoint)", args.size or DEFAULT_SIZE
    arch = model.arch
    placement = "; ".join(f"{stage} blocks {blocks}" for stage, blocks in model.mda_placement.items()) or "none"
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    x = torch.randn(1, 3, *size)
    out, times = time_forward(model, x, args.runs)
    rows = [
        ("model", f"MCJA, {origin}"),
        ("backbone", f"ResNet-{arch['depth']}, last stride {arch['last_stride']}"),
        ("MDA", f"{placement} ({arch['mda_contexts']} contexts)"),
        ("identities", f"{arch['num_classes']}"),
        ("parameters", f"{count_parameters(model):,} ({trainable:,} trainable)"),
        ("feature dim", f"{model.feature_dim}"),
        ("output", f"{list(x.shape)} -> {list(out.shape)} (eval mode)"),
        ("forward time", f"{statistics.median(times):.1f} ms median of {len(times)} runs after a warm-up "
                         f"(min {min(times):.1f}; batch 1, CPU, {torch.get_num_threads()} threads)"),
    ]
    for name, value in rows:
        print(f"{name:<13} {value}")
    return 0
