"""`mcja ablate`: the paper's ablation study, one run folder per variant and one comparison table."""

from __future__ import annotations

import argparse

from mcja.commands.common import add_verb

EXAMPLES = """
  mcja ablate --config sysu.yaml --variants all data.root=/data/SYSU-MM01
  mcja ablate --config regdb.yaml --variants baseline,vimc,full data.root=/data/RegDB data.trial=1
  mcja ablate --config demo.yaml --variants all data.root=mcja-demo/data optim.epochs=10   # synthetic, CPU
variants (configs/ablations/<dataset>/): baseline (no VIMC, MDA, CMR), wg, cc, sj (one VIMC part each),
vimc (all three), mda, cmr (alone), vimc-mda, full. Run again to resume: finished variants are kept.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add `ablate`."""
    p = add_verb(sub, "ablate", "train the ablation variants and write one comparison table", EXAMPLES)
    p.add_argument("--config", default="sysu.yaml", help="the base config (a file or a shipped name)")
    p.add_argument("--variants", default="all", help="all, or names separated by commas")
    p.add_argument("--out", default=None, help="folder for the variants' runs and ablation.md (default: "
                                               "output_dir/<name>-ablation)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="applied to every variant, e.g. data.root=DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_ablate)


def _ablate(args: argparse.Namespace) -> int:
    from mcja import api

    table = api.ablate(args.config, args.variants, args.overrides, args.out, progress=not args.quiet)
    print(table["markdown"].read_text(encoding="utf-8"))
    print(f"table written to {table['markdown']} and {table['json']}")
    return 0
