"""PK ("norm_triplet") batch sampling: P identities x K images per batch, seeded per epoch, rank-aware."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from mcja.errors import ConfigError


class PKSampler:
    """Batch sampler of P x K indices; an epoch's batches depend on (seed, epoch) only (call set_epoch).
    With world_size W each step draws P*W ids and rank r keeps ids [r*P, (r+1)*P): ranks are disjoint,
    equally long, and together make the single-process epoch of P*W ids per batch."""

    def __init__(self, labels: Sequence[int], p: int, k: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        if p < 1 or k < 1:
            raise ConfigError(f"PK sampling needs P >= 1 and K >= 1, got P={p}, K={k}")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is outside 0..{world_size - 1} (world size {world_size})")
        labels = np.asarray(labels, dtype=np.int64)
        ids, inverse = np.unique(labels, return_inverse=True)
        if len(ids) < p * world_size:
            raise ConfigError(
                f"PK sampling needs at least P x world size = {p * world_size} identities, "
                f"the training set has {len(ids)}"
            )
        order = np.argsort(inverse, kind="stable")
        self._members = np.split(order, np.cumsum(np.bincount(inverse))[:-1])  # dataset indices of each id
        self.p, self.k, self.seed, self.rank, self.world_size = p, k, int(seed), rank, world_size
        self.epoch = 0
        self._plan_cache: tuple[int, int, np.ndarray] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._plan())

    def __iter__(self) -> Iterator[list[int]]:
        return self.iter_from(0)

    def iter_from(self, step: int) -> Iterator[list[int]]:
        """This rank's batches of the current epoch, starting at batch `step` (for mid-epoch resume)."""
        plan = self._plan()
        lo, hi = self.rank * self.p * self.k, (self.rank + 1) * self.p * self.k
        for batch in plan[step:]:
            yield batch[lo:hi].tolist()

    def _plan(self) -> np.ndarray:
        """The global batches of the current epoch, [steps, P*W*K], computed once per (seed, epoch)."""
        if self._plan_cache is None or self._plan_cache[:2] != (self.seed, self.epoch):
            self._plan_cache = (self.seed, self.epoch, pk_epoch(self._members, self.p * self.world_size, self.k,
                                                                np.random.default_rng([self.seed, self.epoch])))
        return self._plan_cache[2]


def pk_epoch(members: list[np.ndarray], p: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """One norm_triplet epoch: per id shuffled chunks of K, then P random ids with chunks left per batch."""
    chunks = []
    for idxs in members:
        idxs = rng.choice(idxs, size=k, replace=True) if len(idxs) < k else rng.permutation(idxs)
        chunks.append(list(idxs[: len(idxs) // k * k].reshape(-1, k)))
    available = [i for i, c in enumerate(chunks) if c]
    batches = []
    while len(available) >= p:
        picked = rng.choice(len(available), size=p, replace=False)
        batches.append(np.concatenate([chunks[available[j]].pop(0) for j in picked]))
        available = [i for i in available if chunks[i]]
    return np.stack(batches) if batches else np.empty((0, p * k), dtype=np.int64)
