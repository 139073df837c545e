"""The index's features: one raw append-only file of rows [V, D] (float16 by default), read memory-mapped.

The SQLite database holds how many rows are committed; bytes past that (a chunk written before a kill, never
committed) are cut off before the next append, so the file and the database always agree.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mcja.errors import ConfigError, DatasetError

DTYPES = {"float16": np.float16, "float32": np.float32}


def file_name(dtype: str) -> str:
    """The feature file's name for a dtype (features.float16 / features.float32)."""
    return f"features.{dtype}"


def check_dtype(dtype: str) -> str:
    """`dtype` when it is float16 or float32, else a ConfigError."""
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype: expected float16 or float32, got {dtype!r}")
    return dtype


class FeatureFile:
    """Rows of shape [views, dim] in `folder/features.<dtype>`; `rows` of them committed."""

    def __init__(self, folder: str | Path, dtype: str, views: int, dim: int, rows: int) -> None:
        self.path = Path(folder) / file_name(check_dtype(dtype))
        self.dtype, self.shape, self.rows = np.dtype(DTYPES[dtype]), (int(views), int(dim)), int(rows)
        self.row_bytes = self.dtype.itemsize * self.shape[0] * self.shape[1]
        size = self.path.stat().st_size if self.path.exists() else 0
        if size < self.rows * self.row_bytes:
            raise DatasetError(f"{self.path}: {size} bytes, the index database says {self.rows} rows of "
                               f"{self.row_bytes} bytes (a damaged or foreign index folder)")

    def trim(self) -> int:
        """Cut the bytes past the committed rows (a chunk written before a kill, never committed); returns how many.
        Only under the folder's writer lock."""
        size = self.path.stat().st_size if self.path.exists() else 0
        extra = size - self.rows * self.row_bytes
        if extra > 0:
            with open(self.path, "r+b") as f:
                f.truncate(self.rows * self.row_bytes)
        return max(extra, 0)

    def append(self, feats: np.ndarray) -> range:
        """Write [n, views, dim] features after the committed rows (cutting uncommitted bytes first), flushed to
        disk; returns their row numbers. The caller commits them in the database."""
        feats = np.ascontiguousarray(feats, dtype=self.dtype).reshape(-1, *self.shape)
        with open(self.path, "ab") as f:
            f.truncate(self.rows * self.row_bytes)
            f.seek(self.rows * self.row_bytes)
            f.write(feats.tobytes())
            f.flush()
            os.fsync(f.fileno())
        start, self.rows = self.rows, self.rows + len(feats)
        return range(start, self.rows)

    def array(self) -> np.ndarray:
        """The committed rows as a read-only memory map [rows, views, dim] (an empty array when none)."""
        if self.rows == 0:
            return np.zeros((0, *self.shape), dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.rows, *self.shape))

    def take(self, rows: np.ndarray, view: int | None = 0) -> np.ndarray:
        """float32 features of `rows` (file order kept as given): [n, dim] of one view, or [n, views, dim]."""
        data = self.array()[np.asarray(rows, dtype=np.int64)]
        return (data if view is None else data[:, view]).astype(np.float32)
