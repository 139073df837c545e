"""Verbs of the 'data' group: `data-info` checks a dataset's layout and counts it; `make-synthetic` writes one."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mcja.commands.common import add_verb, parse_size
from mcja.data.images import load_rgb
from mcja.data.registry import DATASET_NAMES, DATASETS, load_dataset
from mcja.data.records import INFRARED, VISIBLE, Sample, VIDataset
from mcja.data.synthetic import DEFAULT_IDS, DEFAULT_IMAGES_PER_CAMERA, LAYOUTS, make_synthetic

GALLERY_SETTINGS = (("all", 1), ("all", 10), ("indoor", 1), ("indoor", 10))
SYSU_TRIALS = 10

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
    p.set_defaults(func=data_info)

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


def data_info(args: argparse.Namespace) -> int:
    """Read the dataset (DatasetError on any layout problem), optionally decode every image, print a summary."""
    dataset = load_dataset(args.dataset, args.root, trial=args.trial)
    if args.verify:
        for sample in tqdm(dataset.train + dataset.test_visible + dataset.test_infrared, desc="verify", unit="img"):
            load_rgb(sample.path)
    info = summarize(dataset)
    info["verified"] = bool(args.verify)
    for line in empty_id_warnings(info, dataset.meta.get("test_id_file", "the test id list")):
        print(f"mcja data-info: warning: {line}", file=sys.stderr)
    print(json.dumps(info, indent=2) if args.json else format_summary(info))
    return 0


def empty_id_warnings(info: dict[str, Any], id_file: str, listed: int = 10) -> list[str]:
    """One line per test id the id file lists but no image shows (a summary line beyond `listed` of them):
    such ids silently shrink the test set, e.g. after an incomplete download."""
    empty = info.get("test_ids_without_images") or []
    if len(empty) > listed:
        shown = ", ".join(map(str, empty[:listed]))
        return [f"{len(empty)} test ids listed in {id_file} have no images at all: {shown}, ..."]
    return [f"test id {pid} is listed in {id_file} but has no images at all" for pid in empty]


def summarize(dataset: VIDataset) -> dict[str, Any]:
    """Counts of ids and images per split, modality and camera; SYSU-MM01 adds its per-trial gallery sizes."""
    train_vis = [s for s in dataset.train if s.modality == VISIBLE]
    train_ir = [s for s in dataset.train if s.modality == INFRARED]
    info: dict[str, Any] = {
        "dataset": dataset.name,
        "root": dataset.root,
        "train_ids": len({s.label for s in dataset.train}),
        "train_visible": len(train_vis),
        "train_infrared": len(train_ir),
        "test_ids": len({s.pid for s in dataset.test_visible + dataset.test_infrared}),
        "test_visible": len(dataset.test_visible),
        "test_infrared": len(dataset.test_infrared),
        "cameras": {
            "train_visible": _per_camera(train_vis),
            "train_infrared": _per_camera(train_ir),
            "test_visible": _per_camera(dataset.test_visible),
            "test_infrared": _per_camera(dataset.test_infrared),
        },
    }
    if "test_ids" in dataset.meta:
        seen = {s.pid for s in dataset.test_visible + dataset.test_infrared}
        info["test_ids_without_images"] = sorted(set(dataset.meta["test_ids"]) - seen)
    if dataset.name == "regdb":
        info["trial"] = dataset.meta["trial"]
    if dataset.name == "sysu":
        info["rand_perm_cam"] = dataset.meta["rand_perm_cam"]
        info["gallery_sizes"] = sysu_gallery_sizes(dataset)
    return info


def sysu_gallery_sizes(dataset: VIDataset) -> dict[str, list[int]] | None:
    """Gallery size of each of the 10 trials per setting ('all/1-shot', ...); None without rand_perm_cam.mat."""
    path = dataset.meta["rand_perm_cam"]
    if not os.path.isfile(path):
        return None
    from mcja.evaluation.sysu import load_rand_perm, sysu_trial_masks  # imports torch: only when needed

    perm = load_rand_perm(path)
    gallery = dataset.test_visible
    paths, cams, pids = [s.path for s in gallery], [s.camera for s in gallery], [s.pid for s in gallery]
    sizes = {}
    for mode, shots in GALLERY_SETTINGS:
        masks = sysu_trial_masks(paths, cams, pids, perm, mode, shots, SYSU_TRIALS)
        sizes[f"{mode}/{shots}-shot"] = [int(n) for n in masks.sum(1)]
    return sizes


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
    for t in range(SYSU_TRIALS):
        lines.append(f"{t + 1:>5} " + "".join(f"{v[t]:>15}" for v in sizes.values()))
    return lines


def _per_camera(samples: list[Sample]) -> dict[str, int]:
    """{camera: image count}, cameras in increasing order (string keys, as JSON has them)."""
    return {str(cam): n for cam, n in sorted(Counter(s.camera for s in samples).items())}



def _make_synthetic(args: argparse.Namespace) -> int:
    """Write the dataset, then say where it is and how to read it."""
    out = make_synthetic(args.layout, args.out, ids=args.ids, seed=args.seed, size=args.size,
                         images_per_camera=args.images_per_camera, progress=True)
    print(f"wrote a synthetic {DATASETS[args.layout].title} dataset to {out}")
    print(f"check it with: mcja data-info --dataset {args.layout} --root {Path(out)}")
    return 0
