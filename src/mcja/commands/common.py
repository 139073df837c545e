"""Argument helpers shared by several verbs."""

from __future__ import annotations

import argparse
from typing import Callable


def add_verb(sub: argparse._SubParsersAction, name: str, help: str, examples: str) -> argparse.ArgumentParser:
    """Add a verb whose --help ends with usage examples."""
    return sub.add_parser(
        name,
        help=help,
        description=help,
        epilog="examples:\n" + examples.strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_amp_option(p: argparse.ArgumentParser) -> None:
    """--amp for verbs that compute test-time features (choices as mcja.engine.runtime.AMP_MODES, less fp16)."""
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"),
                   help="numerics of the forward pass: auto = bf16 autocast on CUDA and on CPUs with native bf16 "
                        "instructions (AVX512-BF16/AMX), float32 elsewhere; off = float32 everywhere (default auto)")


def size_type(minimum: int = 8) -> Callable[[str], tuple[int, int]]:
    """argparse type for an image size 'HxW' (e.g. 384x192) with each side at least `minimum`."""

    def parse(text: str) -> tuple[int, int]:
        try:
            h, w = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected HxW such as 384x192, got {text!r}") from None
        if h < minimum or w < minimum:
            raise argparse.ArgumentTypeError(f"expected each side >= {minimum}, got {text!r}")
        return h, w

    return parse


parse_size = size_type(8)
model_size = size_type(32)  # the backbone downsamples 32 times
