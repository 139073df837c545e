"""What `mcja data-info` reports: a dataset's ids and images per split, modality and camera, checked on disk."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from tqdm import tqdm

from mcja.data.images import load_rgb
from mcja.data.records import INFRARED, VISIBLE, Sample, VIDataset
from mcja.data.registry import load_dataset

GALLERY_SETTINGS = (("all", 1), ("all", 10), ("indoor", 1), ("indoor", 10))
SYSU_TRIALS = 10


def dataset_info(dataset: str, root: str, trial: int = 1, verify: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Read the dataset (DatasetError on any layout problem), optionally decode every image; (summary, warnings)."""
    data = load_dataset(dataset, root, trial=trial)
    if verify:
        for sample in tqdm(data.train + data.test_visible + data.test_infrared, desc="verify", unit="img"):
            load_rgb(sample.path)
    info = summarize(data)
    info["verified"] = bool(verify)
    return info, empty_id_warnings(info, data.meta.get("test_id_file", "the test id list"))


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


def _per_camera(samples: list[Sample]) -> dict[str, int]:
    """{camera: image count}, cameras in increasing order (string keys, as JSON has them)."""
    return {str(cam): n for cam, n in sorted(Counter(s.camera for s in samples).items())}
