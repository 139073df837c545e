"""The `mcja` command: one sub-command per verb; each verb's parser lives in `mcja.commands.*`."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from mcja import __version__
from mcja.errors import MCJAError

# Each module defines `register(subparsers)`, adding its verbs with `set_defaults(func=...)`.
COMMAND_MODULES = (
    "mcja.commands.demo",
    "mcja.commands.train",
    "mcja.commands.data",
    "mcja.commands.augment",
    "mcja.commands.inference",
    "mcja.commands.model",
    "mcja.commands.visualize",
    "mcja.commands.ablate",
)

EPILOG = """examples:
  mcja demo                                   # synthetic data, train, evaluate, report (CPU, minutes)
  mcja train --config sysu.yaml data.root=/data/SYSU-MM01
  mcja test --checkpoint runs/sysu/best.pt --dataset sysu --root /data/SYSU-MM01 --mser
  mcja data-info --dataset regdb --root /data/RegDB --trial 3
  mcja search --checkpoint best.pt --query q.jpg --gallery gallery/ --out results/
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
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; user errors print one line and return 2, an interruption returns 130."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        result = args.func(args)
    except MCJAError as err:
        print(f"mcja {args.verb}: {err.label}{err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"mcja {args.verb}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
