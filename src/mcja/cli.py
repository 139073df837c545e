"""The `mcja` command: one sub-command per verb; each verb's parser lives in `mcja.commands.*`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence, TextIO

from mcja import __version__
from mcja.commands import ablate, augment, data, demo, index, inference, model, serve, train, visualize
from mcja.errors import MCJAError
from mcja.utils.names import printable

# Each module defines `register(subparsers)`, adding its verbs with `set_defaults(func=...)`; --help lists them
# in this order.
COMMAND_MODULES = (demo, train, data, augment, inference, model, index, serve, visualize, ablate)

EPILOG = """examples:
  mcja demo                                   # synthetic data, train, evaluate, report (CPU, minutes)
  mcja train --config sysu.yaml data.root=/data/SYSU-MM01
  mcja test --checkpoint runs/sysu/best.pt --dataset sysu --root /data/SYSU-MM01 --mser
  mcja data-info --dataset regdb --root /data/RegDB --trial 3
  mcja search --checkpoint best.pt --query q.jpg --gallery gallery/ --out results/
  mcja index build --checkpoint best.pt --images /archive --out archive.idx   # archive-scale search (FAISS)
  mcja serve archive.idx                      # search service + web page at http://127.0.0.1:8000/
  mcja test --checkpoint best.pt --dataset sysu --root /data/SYSU-MM01 --figures 5   # + figures, verification
  mcja ablate --config sysu.yaml --variants all data.root=/data/SYSU-MM01
run `mcja VERB --help` for a verb's options and examples."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every verb registered."""
    parser = argparse.ArgumentParser(
        prog="mcja",
        description="Visible-infrared person re-identification with MCJA (train, evaluate, search, export).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mcja {__version__}")
    parser.add_argument("--threads", type=_threads, default=None, metavar="N",
                        help="CPU threads for torch (default: $OMP_NUM_THREADS, else every core); for shared machines")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; user errors print one line and return 2, an interruption returns 130."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    stdout, sys.stdout = sys.stdout, _PipeSafe(sys.stdout)
    try:
        return _run(args)
    finally:
        sys.stdout = stdout


def _run(args: argparse.Namespace) -> int:
    """The verb's function; user errors become one line on stderr and their exit code."""
    try:
        result = args.func(args)
    except MCJAError as err:
        print(printable(f"mcja {args.verb}: {err.label}{err}"), file=sys.stderr)  # a non-UTF-8 file name as \\xNN
        return err.exit_code
    except KeyboardInterrupt:
        print(f"mcja {args.verb}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def _threads(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of threads, got {text!r}")
    return int(text)


class _PipeSafe:
    """stdout that goes quiet when its reader is gone (`mcja train ... | head`) instead of killing the work."""

    def __init__(self, stream: TextIO):
        self._stream, self._closed = stream, False

    def write(self, text: str) -> int:
        if not self._closed:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self._closed:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._silence()

    def _silence(self) -> None:
        self._closed = True
        # The interpreter flushes stdout at exit: point the descriptor at /dev/null so that flush succeeds too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


if __name__ == "__main__":
    raise SystemExit(main())
