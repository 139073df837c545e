"""`mcja demo`: synthetic data, training, evaluation and a report, on a CPU in minutes."""

from __future__ import annotations

import argparse

from mcja.commands.common import add_verb


def register(sub: argparse._SubParsersAction) -> None:
    """Add `demo`."""
    p = add_verb(sub, "demo", "train and evaluate MCJA end to end on a synthetic dataset (no download, CPU)", """
  mcja demo                              # writes ./mcja-demo/{data,run,report}
  mcja demo --out /tmp/demo --epochs 4   # shorter
  mcja demo optim.lr=5e-4                # any training setting (see configs/demo.yaml)""")
    p.add_argument("--out", default="mcja-demo", help="folder for the data, the run and the report (default ./mcja-demo)")
    p.add_argument("--ids", type=int, default=None, help="identities in the synthetic set (default 96)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: configs/demo.yaml)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="training overrides, e.g. optim.lr=5e-4")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from mcja import api

    ids = {} if args.ids is None else {"ids": args.ids}  # None keeps the demo's own default
    api.demo(args.out, args.overrides, progress=not args.quiet, seed=args.seed, epochs=args.epochs, **ids)
    return 0
