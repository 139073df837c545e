"""`mcja show-augmentations`: a picture of training images under each augmentation, for checking by eye."""

from __future__ import annotations

import argparse

from mcja.commands.common import DEFAULT_SIZE_TEXT, add_verb, parse_size
from mcja.data.registry import DATASET_NAMES
from mcja.input_size import DEFAULT_IMAGE_SIZE

EXAMPLES = """
  mcja show-augmentations --dataset sysu --root /data/SYSU-MM01 --out augmentations.png
  mcja show-augmentations --dataset regdb --root /data/RegDB --trial 2 --out regdb.png --n 6 --seed 3
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add `show-augmentations` to the `mcja` parser."""
    p = add_verb(sub, "show-augmentations", "Write a PNG grid of training images under each augmentation.", EXAMPLES)
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES, help="layout of the folder")
    p.add_argument("--root", required=True, help="the dataset folder")
    p.add_argument("--out", required=True, help="the PNG file to write")
    p.add_argument("--trial", type=int, default=1, help="RegDB split, 1..10 (default 1)")
    p.add_argument("--n", type=int, default=4, help="training images, half visible, half infrared (default 4)")
    p.add_argument("--size", type=parse_size, default=DEFAULT_IMAGE_SIZE, help=f"image HxW (default {DEFAULT_SIZE_TEXT})")
    p.add_argument("--seed", type=int, default=0, help="picks the images and the parameters (default 0)")
    p.set_defaults(func=_show_augmentations)


def _show_augmentations(args: argparse.Namespace) -> int:
    """Write the grid (see `mcja.api.show_augmentations`) and say what it holds."""
    from mcja import api

    r = api.show_augmentations(args.dataset, args.root, args.out, trial=args.trial, n=args.n, size=args.size,
                               seed=args.seed)
    print(f"wrote {r['out']} ({r['images']} images x {len(r['columns'])} columns: {', '.join(r['columns'])})")
    return 0
