"""`mcja train` and `mcja test`."""

from __future__ import annotations

import argparse
import os

from mcja.commands.common import (
    add_amp_option,
    add_mser_options,
    add_verb,
    int_range,
    model_size,
    mser_options,
    positive_int,
    size_help,
    trial_list,
    trial_number,
)
from mcja.data.registry import DATASET_NAMES
from mcja.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add `train` and `test`."""
    p = add_verb(sub, "train", "train an MCJA model (one process, or many under torchrun)", """
  mcja train --config sysu.yaml data.root=/data/SYSU-MM01
  mcja train --config regdb.yaml --trials 1-10 data.root=/data/RegDB      # one model per split + the 10-split table
  mcja train --config demo.yaml data.root=./synthetic optim.epochs=4 train.device=cpu
  mcja train --resume runs/sysu                                            # continue after Ctrl-C or a crash
  torchrun --nproc_per_node 2 -m mcja train --config demo.yaml data.root=DIR   # DDP (gloo on CPU, NCCL on GPU)
  mcja train --config /path/to/reference/configs/SYSU_MCJA.yml data.root=DIR   # the reference code's configs load too""")
    p.add_argument("--config", default=None, help="a YAML file or a shipped config name (sysu, regdb, llcm, demo)")
    p.add_argument("--out", default=None, help="run folder (default: output_dir/name, made unique)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt")
    p.add_argument("--trials", type=trial_list, default=None,
                   help="RegDB: train one model per split, e.g. 1-10 or 1,3,5, then the mean ± std table")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. optim.lr=1e-4 data.root=DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = add_verb(sub, "test", "evaluate a checkpoint with a dataset's whole test protocol", """
  mcja test --checkpoint runs/sysu/best.pt --dataset sysu --root /data/SYSU-MM01 --mser
  mcja test --checkpoint regdb_model_best.pth --dataset regdb --root /data/RegDB --trial 1   # a reference-code checkpoint
  mcja test --checkpoint best.pt --dataset llcm --root /data/LLCM --out results/llcm
  mcja test --checkpoint mcja-demo/run/best.pt --dataset sysu --root mcja-demo/data --mser --figures 5""")
    p.add_argument("--checkpoint", required=True, help="ours (best.pt/last.pt) or a reference-code state dict")
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--root", required=True, help="the dataset folder, in its published layout")
    p.add_argument("--trial", type=trial_number, default=1, help="RegDB split (1..10)")
    p.add_argument("--mser", action="store_true", help="also report MSER re-ranked figures (separately)")
    add_mser_options(p, "--mser", "the dataset's own; what the checkpoint was trained with does not apply")
    p.add_argument("--out", default=None, help="folder for results.md / results.json (default: beside the checkpoint)")
    p.add_argument("--size", type=model_size, default=None, help=size_help("image size HxW"))
    p.add_argument("--batch-size", type=positive_int, default=128, help="images per forward pass (default 128)")
    p.add_argument("--trials", type=trial_number, default=10, help="SYSU-MM01 / LLCM gallery trials, 1..10 (default 10)")
    p.add_argument("--device", default="auto")
    add_amp_option(p)
    p.add_argument("--figures", type=int_range(0), nargs="?", const=5, default=0, metavar="N",
                   help="also draw figures beside results.md: ranked lists of N random and N hardest queries "
                        "(default 5), CMC, similarity histograms, ROC, t-SNE, activation maps")
    p.add_argument("--fpr", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2], metavar="F",
                   help="verification: the false positive rates to report TPR and threshold at (default 1e-4 1e-3 1e-2)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_test)


def _train(args: argparse.Namespace) -> int:
    from mcja import api
    from mcja.evaluation.report import print_run_summary, print_trials_table

    # Under torchrun only rank 0 evaluates and writes: it alone prints the summary.
    main_process = os.environ.get("RANK", "0") == "0"
    if args.resume:
        if args.config or args.trials:
            raise ConfigError("--resume continues with the run's own config: give only KEY=VALUE overrides")
        summary = api.resume(args.resume, args.overrides, progress=not args.quiet)
        if main_process:
            print_run_summary(summary)
        return 0
    config = args.config or "sysu.yaml"
    if args.trials:
        table = api.train_trials(config, args.trials, args.overrides, args.out, progress=not args.quiet)
        if main_process:
            print_trials_table(table)
        return 0
    summary = api.train(config, args.overrides, args.out, progress=not args.quiet)
    if main_process:
        print_run_summary(summary)
    return 0


def _test(args: argparse.Namespace) -> int:
    from mcja import api
    from mcja.evaluation.report import print_results, print_verification

    results = api.test(args.checkpoint, args.dataset, args.root, trial=args.trial, mser=args.mser, out=args.out,
                       image_size=args.size, batch_size=args.batch_size, device=args.device, trials=args.trials,
                       progress=not args.quiet, amp=args.amp, figures=args.figures, fprs=args.fpr,
                       **mser_options(args))
    print_results(results)
    print_verification(results["verification"])
    for path in results["figures"][:1]:
        print(f"figures      {path.parent} ({len(results['figures'])} files, linked from results.md)")
    for note in results["notes"]:
        print(f"note         {note}")
    print(f"\nresults written to {' and '.join(results['written'])}")
    return 0
