"""The datasets `mcja` reads, one row each: the config's and the CLI's choices, titles and readers come from here.

Adding a dataset is one reader module (its published layout) and one row below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from mcja.data.folder import read_folder
from mcja.data.llcm import read_llcm
from mcja.data.records import VIDataset
from mcja.data.regdb import read_regdb
from mcja.data.sysu import read_sysu
from mcja.errors import DatasetError


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its name in configs and on the command line, its title, reader and test protocol."""

    name: str
    title: str
    read: Callable[..., VIDataset]  # read(root) or, with `split_by_trial`, read(root, trial)
    protocol: str  # a name in mcja.evaluation.protocols.PROTOCOLS
    split_by_trial: bool = False  # RegDB: the trial (1..10) picks the train/test split


DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec("sysu", "SYSU-MM01", read_sysu, protocol="sysu"),
    DatasetSpec("regdb", "RegDB", read_regdb, protocol="regdb", split_by_trial=True),
    DatasetSpec("llcm", "LLCM", read_llcm, protocol="llcm"),
    DatasetSpec("folder", "image folder", read_folder, protocol="pair"),
)}
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)


def dataset_spec(name: str) -> DatasetSpec:
    """The registry row of `name`; DatasetError listing the known names otherwise."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset '{name}': expected one of {', '.join(DATASET_NAMES)}")
    return DATASETS[name]


def load_dataset(name: str, root: str | os.PathLike, trial: int = 1) -> VIDataset:
    """Read dataset `name` (one of DATASET_NAMES) from `root`; `trial` (1..10) picks RegDB's split."""
    spec = dataset_spec(name)
    return spec.read(root, trial) if spec.split_by_trial else spec.read(root)
