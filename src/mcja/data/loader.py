"""Batches from the image cache: PK training batches (optionally from worker processes) and test-time chunks."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mcja.data.cache import ImageCache
from mcja.data.records import Sample, columns
from mcja.data.sampler import PKSampler


class _Gather(Dataset):
    """Maps a list of dataset indices to one batch dict; small and picklable for workers."""

    def __init__(self, samples: Sequence[Sample], cache: ImageCache) -> None:
        cols = columns(samples)
        self.cache = cache
        self.fields = {"labels": cols["labels"], "modalities": cols["modalities"], "cameras": cols["cameras"]}

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        batch = {"images": self.cache.batch(idx), "indices": torch.from_numpy(idx)}
        batch.update({name: torch.from_numpy(values[idx]) for name, values in self.fields.items()})
        return batch


class _Steps:
    """The sampler's batches from a start step; DataLoader iterates this in the main process."""

    def __init__(self, sampler: PKSampler) -> None:
        self.sampler, self.start = sampler, 0

    def __iter__(self) -> Iterator[list[int]]:
        return self.sampler.iter_from(self.start)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.start)


class TrainLoader:
    """Iterable over training batches {"images" uint8 [B,3,H,W], "labels", "modalities", "cameras", "indices"}.

    Batches follow the sampler's current epoch (`loader.sampler.set_epoch`); iter_from(step) resumes mid-epoch.
    """

    def __init__(self, samples: list[Sample], cache: ImageCache, sampler: PKSampler, num_workers: int = 0,
                 pin_memory: bool = False) -> None:
        if len(samples) != len(cache):
            raise ValueError(f"{len(samples)} samples but the image cache {cache.file} holds {len(cache)} images")
        self.sampler = sampler
        self._steps = _Steps(sampler)
        # batch_size=None: each sampler item is already a whole batch; workers persist across epochs.
        self._loader = DataLoader(_Gather(samples, cache), batch_size=None, sampler=self._steps,
                                  num_workers=num_workers, pin_memory=pin_memory,
                                  persistent_workers=num_workers > 0, prefetch_factor=2 if num_workers else None)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self.iter_from(0)

    def iter_from(self, step: int) -> Iterator[dict[str, torch.Tensor]]:
        """The current epoch's batches from batch `step` on."""
        self._steps.start = int(step)
        return iter(self._loader)


def iterate_batches(cache: ImageCache, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """Consecutive chunks of the cache in order, as (start index, uint8 [b, 3, H, W]), for feature extraction."""
    for start in range(0, len(cache), batch_size):
        yield start, cache.batch(slice(start, start + batch_size))
