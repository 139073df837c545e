"""Verbs of the 'model' group: `model-info` builds or loads a network and prints its summary."""

from __future__ import annotations

import argparse

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
    p.set_defaults(func=_model_info)


def _model_info(args: argparse.Namespace) -> int:
    """Print the summary of one model (see `mcja.api.model_info`)."""
    from mcja import api

    r = api.model_info(args.checkpoint, depth=args.depth, classes=args.classes, contexts=args.contexts,
                       image_size=args.size, runs=args.runs)
    arch, times = r["arch"], r["forward_ms"]
    placement = "; ".join(f"{stage} blocks {blocks}" for stage, blocks in r["mda_placement"].items()) or "none"
    rows = [
        ("model", f"MCJA, {r['origin']}"),
        ("backbone", f"ResNet-{arch['depth']}, last stride {arch['last_stride']}"),
        ("MDA", f"{placement} ({arch['mda_contexts']} contexts)"),
        ("identities", f"{arch['num_classes']}"),
        ("parameters", f"{r['parameters']:,} ({r['trainable']:,} trainable)"),
        ("feature dim", f"{r['feature_dim']}"),
        ("output", f"{r['input_shape']} -> {r['output_shape']} (eval mode)"),
        ("forward time", f"{r['median_ms']:.1f} ms median of {len(times)} runs after a warm-up "
                         f"(min {min(times):.1f}; batch 1, CPU, {r['threads']} threads)"),
    ]
    for name, value in rows:
        print(f"{name:<13} {value}")
    return 0
