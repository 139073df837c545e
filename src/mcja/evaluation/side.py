"""One side of a test (the query set or the gallery): features, person ids, cameras and, where a protocol needs
them, image paths. Protocol functions take two sides plus their own parameters."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from mcja.evaluation._arrays import as_views, labels


@dataclass(frozen=True)
class Side:
    """Features [V, N, D] (float32 tensor, view 0 = the image itself), ids and cameras [N] (int64), paths [N].

    Build it with `Side.of(...)`, which checks shapes, lengths and finiteness once, naming the side.
    """

    feats: torch.Tensor
    ids: np.ndarray
    cams: np.ndarray
    paths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    name: str = ""

    @classmethod
    def of(cls, feats: Any, ids: Any, cams: Any = None, paths: Sequence[str | os.PathLike] | None = None,
           name: str = "") -> Side:
        """A checked side from numpy or torch features ([N, D] or [V, N, D]) and labels; `cams` None = all 0."""
        views = as_views(feats, name)
        n = views.shape[1]
        cam = np.zeros(n, dtype=np.int64) if cams is None else labels(cams, f"{name or 'the'} cameras", n)
        path = np.zeros(0, dtype=object) if paths is None else np.asarray(list(paths), dtype=object)
        if len(path) and len(path) != n:
            raise ValueError(f"{name or 'the'} paths have {len(path)} entries, the features have {n}")
        return cls(views, labels(ids, f"{name or 'the'} ids", n), cam, path, name)

    def __len__(self) -> int:
        return self.feats.shape[1]

    @property
    def views(self) -> int:
        """Number of views V."""
        return self.feats.shape[0]

    def first_view(self) -> Side:
        """The same side with view 0 only (plain ranking)."""
        return Side(self.feats[:1], self.ids, self.cams, self.paths, self.name)

    def take(self, index: Any) -> Side:
        """The side restricted to `index` (integer indices or a boolean mask over its rows), in that order."""
        idx = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, dtype=np.int64)
        paths = self.paths[idx] if len(self.paths) else self.paths
        feats = self.feats[:, torch.as_tensor(idx, device=self.feats.device)]
        return Side(feats, self.ids[idx], self.cams[idx], paths, self.name)

    def with_cams(self, cams: np.ndarray) -> Side:
        """The same side with other camera labels (e.g. SYSU-MM01's same-location rule applied)."""
        return Side(self.feats, self.ids, np.asarray(cams, dtype=np.int64), self.paths, self.name)

    def require_paths(self, protocol: str) -> np.ndarray:
        """The paths, or a ValueError saying `protocol` needs them."""
        if len(self.paths) != len(self):
            raise ValueError(f"{protocol} needs the {self.name or ''} image paths (the trials are defined on file names)")
        return self.paths
