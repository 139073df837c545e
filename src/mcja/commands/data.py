"""Verbs of the 'data' group: `data-info` checks a dataset's layout and counts it; `make-synthetic` writes one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mcja.commands.common import add_verb, parse_size
from mcja.data.registry import DATASET_NAMES, DATASETS
from mcja.data.synthetic import DEFAULT_IDS, DEFAULT_IMAGES_PER_CAMERA, LAYOUTS

DATA_INFO_EXAMPLES = """
  mcja data-info --dataset sysu --root /data/SYSU-MM01            # counts, cameras, per-trial gallery sizes
  mcja data-info --dataset regdb --root /data/RegDB --trial 3 --json
  mcja data-info --dataset llcm --root /data/LLCM --verify         # also decode every image once
  mcja data-info --dataset folder --root ./my_cameras              # <root>/<visible|infrared>/<pid>/*.jpg or a CSV
"""
SYNTHETIC_EXAMPLES = """
  mcja make-synthetic --layout sysu --out ./synthetic/sysu         # 48 ids, 128x64, seed 0
  mcja make-synthetic --layout regdb --out ./synthetic/regdb --ids 20 --seed 1
  mcja make-synthetic --layout llcm --out ./synthetic/llcm --size 256x128
  mcja data-info --dataset sysu --root ./synthetic/sysu            # then read it like the real one
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add `data-info` and `make-synthetic` to the `mcja` parser."""
    p = add_verb(sub, "data-info", "Check a dataset's layout and print what it holds.", DATA_INFO_EXAMPLES)
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES, help="layout of the folder")
    p.add_argument("--root", required=True, help="the dataset folder (folder: a CSV file also works)")
    p.add_argument("--trial", type=int, default=1, help="RegDB split, 1..10 (default 1)")
    p.add_argument("--verify", action="store_true", help="decode every image once; stop at the first unreadable one")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=_data_info)

    p = add_verb(sub, "make-synthetic", "Write a small synthetic dataset in a benchmark's published layout.",
                 SYNTHETIC_EXAMPLES)
    p.add_argument("--layout", required=True, choices=LAYOUTS, help="which benchmark's layout to write")
    p.add_argument("--out", required=True, help="a new (or empty) folder")
    p.add_argument("--ids", type=int, default=None,
                   help="identities (default " + ", ".join(f"{k} {v}" for k, v in DEFAULT_IDS.items()) + ")")
    p.add_argument("--images-per-camera", type=int, default=None,
                   help="images per person and camera (default "
                   + ", ".join(f"{k} {v}" for k, v in DEFAULT_IMAGES_PER_CAMERA.items()) + ")")
    p.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    p.add_argument("--size", type=parse_size, default=(128, 64), help="image HxW (default 128x64)")
    p.set_defaults(func=_make_synthetic)


def _data_info(args: argparse.Namespace) -> int:
    """Check the dataset (see `mcja.api.data_info`), warn about listed ids without images, print the summary."""
    from mcja import api

    info, warnings = api.data_info(args.dataset, args.root, trial=args.trial, verify=args.verify)
    for line in warnings:
        print(f"mcja data-info: warning: {line}", file=sys.stderr)
    print(json.dumps(info, indent=2) if args.json else format_summary(info))
    return 0


def format_summary(info: dict[str, Any]) -> str:
    """The summary as readable tables."""
    title = DATASETS[info["dataset"]].title + (f", trial {info['trial']}" if "trial" in info else "")
    lines = [f"{title} at {info['root']}", "", f"{'split':<8}{'ids':>7}{'visible':>10}{'infrared':>10}"]
    for split in ("train", "test"):
        ids, vis, ir = (info[f"{split}_{key}"] for key in ("ids", "visible", "infrared"))
        lines.append(f"{split:<8}{ids:>7}{vis:>10}{ir:>10}")
    lines += ["", "images per camera:"]
    for key, counts in info["cameras"].items():
        cells = "  ".join(f"cam{cam} {n}" for cam, n in counts.items()) or "-"
        lines.append(f"  {key.replace('_', ' '):<16}{cells}")
    if info["dataset"] == "sysu":
        lines += ["", *_gallery_table(info)]
    if info["verified"]:
        lines += ["", "every image decoded"]
    return "\n".join(lines)


def _gallery_table(info: dict[str, Any]) -> list[str]:
    """Rows of SYSU-MM01 per-trial gallery sizes, or a note that rand_perm_cam.mat is missing."""
    sizes = info["gallery_sizes"]
    if sizes is None:
        return [f"gallery trials: {info['rand_perm_cam']} not found; evaluation needs it (it ships with the",
                "SYSU-MM01 evaluation code: copy it into exp/). Training does not."]
    lines = ["gallery images per trial (rand_perm_cam.mat):", "trial " + "".join(f"{k:>15}" for k in sizes)]
    for t in range(len(next(iter(sizes.values())))):
        lines.append(f"{t + 1:>5} " + "".join(f"{v[t]:>15}" for v in sizes.values()))
    return lines


def _make_synthetic(args: argparse.Namespace) -> int:
    """Write the dataset, then say where it is and how to read it."""
    from mcja import api

    out = api.make_synthetic(args.layout, args.out, ids=args.ids, seed=args.seed, size=args.size,
                             images_per_camera=args.images_per_camera, progress=True)
    print(f"wrote a synthetic {DATASETS[args.layout].title} dataset to {out}")
    print(f"check it with: mcja data-info --dataset {args.layout} --root {Path(out)}")
    return 0
