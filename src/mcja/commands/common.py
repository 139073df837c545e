"""Argument helpers shared by several verbs."""

from __future__ import annotations

import argparse
import math
import re
from typing import Any, Callable, NoReturn

from mcja.input_size import DEFAULT_IMAGE_SIZE, IMAGE_SIDE

DEFAULT_SIZE_TEXT = "{}x{}".format(*DEFAULT_IMAGE_SIZE)  # as --size takes it


def add_verb(sub: argparse._SubParsersAction, name: str, help: str, examples: str) -> argparse.ArgumentParser:
    """Add a verb whose --help ends with usage examples."""
    parser = sub.add_parser(
        name,
        help=help,
        description=help,
        epilog="examples:\n" + examples.strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.error = lambda message: _one_line_error(parser, message)  # type: ignore[method-assign]
    return parser


def _one_line_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """A bad option is one line and exit 2, like every other user error (the usage stays in --help)."""
    parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")


def add_amp_option(p: argparse.ArgumentParser) -> None:
    """--amp for verbs that compute test-time features (choices as mcja.engine.runtime.AMP_MODES, less fp16)."""
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"),
                   help="numerics of the forward pass: auto = bf16 autocast on CUDA and on CPUs with native bf16 "
                        "instructions (AVX512-BF16/AMX), float32 elsewhere; off = float32 everywhere (default auto)")



def add_mser_options(p: argparse.ArgumentParser, flag: str, auto: str) -> None:
    """--mser-preset, --mser-k1, --mser-k2, --mser-lambda: MSER's parameters with `flag` (--mser, --rerank); `auto`
    says what the default preset is. Ranges as the config's eval.mser_* keys."""
    p.add_argument("--mser-preset", default=None, metavar="NAME",
                   help=f"with {flag}: MSER's parameters, auto = {auto} (default), or a dataset's preset by name "
                        "(the names and values: README, Configuration)")
    p.add_argument("--mser-k1", type=int_range(1), default=None, metavar="K", help=f"with {flag}: k1 (neighbours) over the preset's")
    p.add_argument("--mser-k2", type=int_range(1), default=None, metavar="K", help=f"with {flag}: k2 (query expansion) over the preset's")
    p.add_argument("--mser-lambda", type=float_range(0, 1), default=None, metavar="L",
                   help=f"with {flag}: lambda (weight of the original distance, 0..1) over the preset's")


def mser_options(args: argparse.Namespace) -> dict[str, Any]:
    """The values of the add_mser_options options, as the API's keywords."""
    return {"mser_preset": args.mser_preset, "mser_k1": args.mser_k1, "mser_k2": args.mser_k2,
            "mser_lambda": args.mser_lambda}


def size_help(what: str) -> str:
    """--size help for verbs that run a model: `what`, then the default (the checkpoint's, else the paper's size)."""
    return f"{what} (default: the checkpoint's, else {DEFAULT_SIZE_TEXT})"


def size_type(minimum: int, maximum: int = IMAGE_SIDE[1]) -> Callable[[str], tuple[int, int]]:
    """argparse type for an image size 'HxW' (e.g. 128x64) with each side in minimum..maximum."""

    def parse(text: str) -> tuple[int, int]:
        try:
            h, w = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected HxW such as {DEFAULT_SIZE_TEXT}, got {text!r}") from None
        if not (minimum <= h <= maximum and minimum <= w <= maximum):
            raise argparse.ArgumentTypeError(f"expected each side {minimum}..{maximum}, got {text!r}")
        return h, w

    return parse


def int_range(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """argparse type for an integer in minimum..maximum (no upper bound when maximum is None)."""
    expected = f"an integer >= {minimum}" if maximum is None else f"an integer {minimum}..{maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def float_range(minimum: float, maximum: float) -> Callable[[str], float]:
    """argparse type for a number in minimum..maximum."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not minimum <= value <= maximum:  # NaN fails too
            raise argparse.ArgumentTypeError(f"expected a number {minimum:g}..{maximum:g}, got {text!r}")
        return value

    return parse


def trial_list(text: str) -> list[int]:
    """argparse type for RegDB trials to train: '1-10' -> [1..10]; '1,3,5' -> [1, 3, 5]."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", part)
        if not m:
            raise argparse.ArgumentTypeError(f"expected e.g. 1-10 or 1,3,5, got {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        out.extend(range(lo, hi + 1))
    if not out or min(out) < 1 or max(out) > 10:
        raise argparse.ArgumentTypeError(f"RegDB trials are 1..10, got {text!r}")
    return out


parse_size = size_type(8)  # pictures only (no model)
model_size = size_type(IMAGE_SIDE[0])  # the backbone downsamples 32 times
positive_int = int_range(1)
trial_number = int_range(1, 10)  # RegDB splits and SYSU-MM01 / LLCM gallery trials
