"""Conversions shared by the evaluation modules: numpy/torch in, either out, never modifying the input."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def to_numpy(x: Any) -> np.ndarray:
    """A numpy view or copy of `x` (numpy array, torch tensor on any device, or sequence)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def to_tensor(x: Any, device: torch.device | str | None = None) -> torch.Tensor:
    """A float32 tensor of `x`; tensors stay on their device unless `device` is given."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(device=device if device is not None else x.device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)


def as_views(x: Any) -> torch.Tensor:
    """Features as a float32 tensor [V, N, D]; a plain [N, D] input is one view."""
    t = to_tensor(x)
    if t.dim() == 2:
        return t.unsqueeze(0)
    if t.dim() != 3:
        raise ValueError(f"features must be [N, D] or [V, N, D], got shape {tuple(t.shape)}")
    return t


def labels(x: Any, name: str, n: int) -> np.ndarray:
    """Integer labels as a fresh int64 numpy array of length `n` (a copy: callers' arrays stay untouched)."""
    a = np.array(to_numpy(x), dtype=np.int64).reshape(-1)
    if a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} entries, the features have {n}")
    return a
