"""A validation split carved from the training identities, for model selection without the test set."""

from __future__ import annotations

import dataclasses

import numpy as np

from mcja.data.records import INFRARED, VISIBLE, Sample, VIDataset
from mcja.errors import ConfigError


def hold_out_ids(dataset: VIDataset, n_ids: int, seed: int = 0) -> tuple[VIDataset, list[Sample], list[Sample]]:
    """Move `n_ids` random training identities out of training: (rest, their visible, their infrared).

    The remaining training labels are renumbered 0..N-1 in their previous order; held-out records get label -1.
    """
    labels = sorted({s.label for s in dataset.train})
    if not 0 < n_ids < len(labels) - 1:
        raise ConfigError(f"'data.val_ids' must be between 1 and {len(labels) - 2} for {dataset.name}; got {n_ids}")
    held = set(np.random.default_rng(seed).choice(labels, size=n_ids, replace=False).tolist())
    kept = [lab for lab in labels if lab not in held]
    remap = {old: new for new, old in enumerate(kept)}
    train = [dataclasses.replace(s, label=remap[s.label]) for s in dataset.train if s.label not in held]
    val = [dataclasses.replace(s, label=-1) for s in dataset.train if s.label in held]
    rest = dataclasses.replace(dataset, train=train)
    return (
        rest,
        [s for s in val if s.modality == VISIBLE],
        [s for s in val if s.modality == INFRARED],
    )
