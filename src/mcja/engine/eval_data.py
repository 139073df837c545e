"""The test (or validation) images a model is evaluated on: cached once as uint8, with what the protocol needs."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mcja.data.cache import ImageCache
from mcja.data.records import Sample, VIDataset, columns
from mcja.data.registry import DATASETS
from mcja.errors import DatasetError
from mcja.evaluation import Side, load_rand_perm


@dataclass
class EvalData:
    """The cached test images of both modalities and what the protocol needs besides features."""

    protocol: str  # a name in mcja.evaluation.PROTOCOLS
    label: str
    visible: ImageCache
    infrared: ImageCache
    vis: dict[str, np.ndarray]  # columns(): paths, pids, cameras, ...
    ir: dict[str, np.ndarray]
    perm: Any = None  # SYSU-MM01 rand_perm_cam (None there: the whole gallery, not the standard trials)
    trials: int = 10

    def describe(self) -> str:
        return f"{self.label}: {len(self.infrared)} infrared / {len(self.visible)} visible images"

    def sides(self, visible: torch.Tensor, infrared: torch.Tensor) -> tuple[Side, Side]:
        """The visible and infrared sides of a test from their features [V, N, D]."""
        v, i = self.vis, self.ir
        return (Side.of(visible, v["pids"], v["cameras"], v["paths"], name="visible"),
                Side.of(infrared, i["pids"], i["cameras"], i["paths"], name="infrared"))


def prepare_eval_data(dataset: VIDataset, val: tuple[list[Sample], list[Sample]] | None, size: Sequence[int],
                      cache_dir: str | None = None, trials: int = 10, progress: bool = True) -> EvalData:
    """The selection set (held-out training ids when `val` is given) or the dataset's test set, cached at `size`;
    `trials` is the number of SYSU-MM01 / LLCM gallery trials."""
    spec = DATASETS[dataset.name] if dataset.name in DATASETS else None
    trial = dataset.meta.get("trial", 1)  # RegDB's split: in the label and the cache tag
    if val is not None:
        vis, ir, protocol = val[0], val[1], "pair"
        label, split = f"{dataset.name} validation ids", "val"
    else:
        vis, ir = dataset.test_visible, dataset.test_infrared
        protocol = spec.protocol if spec else "pair"
        label, split = f"{spec.title if spec else dataset.name} test set", "test"
        if spec and spec.split_by_trial:
            label += f" (trial {trial})"
    if not vis or not ir:
        raise DatasetError(f"{dataset.root}: the {split} set needs images of both modalities "
                           f"(found {len(vis)} visible, {len(ir)} infrared)")
    perm = None
    if protocol == "sysu":
        perm = _sysu_perm(dataset)
        if perm is None:
            label = f"{label}, whole gallery (no rand_perm_cam.mat: not the standard trials)"
    tag, size = f"{dataset.name}-{split}-{trial}", tuple(size)
    return EvalData(
        protocol=protocol, label=label, perm=perm, trials=trials,
        visible=ImageCache.build([s.path for s in vis], size, cache_dir, tag=f"{tag}-visible", progress=progress),
        infrared=ImageCache.build([s.path for s in ir], size, cache_dir, tag=f"{tag}-infrared", progress=progress),
        vis=columns(vis), ir=columns(ir),
    )


def _sysu_perm(dataset: VIDataset) -> Any:
    """The gallery trials; None (with a warning) when exp/rand_perm_cam.mat is missing."""
    path = dataset.meta.get("rand_perm_cam")
    if not path or not Path(path).is_file():
        warnings.warn(f"{Path(dataset.root) / 'exp' / 'rand_perm_cam.mat'} is missing: evaluating against every visible "
                      "test image instead of the standard 10 gallery trials (copy the file from the SYSU-MM01 "
                      "evaluation code into exp/ for comparable figures)", stacklevel=2)
        return None
    return load_rand_perm(path)
