"""What `mcja data-info` reports: a dataset's ids and images per split, modality and camera, checked on disk."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, Callable

from tqdm import tqdm

from mcja.data.images import load_rgb
from mcja.data.records import INFRARED, VISIBLE, Sample, VIDataset
from mcja.data.registry import load_dataset

GallerySizes = Callable[[list[str], list[int], list[int], str], dict[str, list[int]]]


def dataset_info(dataset: str, root: str, trial: int = 1, verify: bool = False,
                 gallery_sizes: GallerySizes | None = None) -> tuple[dict[str, Any], list[str]]:
    """Read the dataset (DatasetError on any layout problem), optionally decode every image; (summary, warnings).

    `gallery_sizes(paths, cameras, ids, rand_perm_cam path)` adds SYSU-MM01's gallery size per setting and trial
    (the protocol's knowledge, e.g. mcja.evaluation.sysu.sysu_gallery_sizes; None when the .mat file is missing).
    """
    data = load_dataset(dataset, root, trial=trial)
    if verify:
        for sample in tqdm(data.train + data.test_visible + data.test_infrared, desc="verify", unit="img"):
            load_rgb(sample.path)
    info = summarize(data)
    if data.name == "sysu" and gallery_sizes is not None:
        path, g = data.meta["rand_perm_cam"], data.test_visible
        found = os.path.isfile(path)
        info["gallery_sizes"] = gallery_sizes([s.path for s in g], [s.camera for s in g], [s.pid for s in g],
                                              path) if found else None
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
    """Counts of ids and images per split, modality and camera."""
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
    return info


def _per_camera(samples: list[Sample]) -> dict[str, int]:
    """{camera: image count}, cameras in increasing order (string keys, as JSON has them)."""
    return {str(cam): n for cam, n in sorted(Counter(s.camera for s in samples).items())}
