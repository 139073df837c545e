"""Decode-and-resize-once image cache: a uint8 [N, H, W, 3] .npy memory map, keyed by what went into it."""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from mcja.data.images import load_resized
from mcja.errors import DatasetError
from mcja.utils.io import atomic_path, ensure_writable_dir

try:  # POSIX only; elsewhere concurrent builders just both build (still safe, see build()).
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


def default_cache_dir() -> Path:
    """$MCJA_CACHE_DIR, else ~/.cache/mcja."""
    return Path(os.environ.get("MCJA_CACHE_DIR") or Path.home() / ".cache" / "mcja")


def cache_key(paths: Sequence[str], size: tuple[int, int], tag: str = "") -> str:
    """Hash of the tag, the image size, the ordered file list and each file's size and mtime."""
    digest = hashlib.sha256(json.dumps({"tag": tag, "size": list(size), "format": 1}).encode())
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            raise DatasetError(f"{path}: image file not found") from None
        digest.update(f"\0{path}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return digest.hexdigest()


class ImageCache:
    """Read-only view of a cache file; pickles as its path so DataLoader workers reopen the memory map."""

    def __init__(self, file: str | os.PathLike) -> None:
        self.file = Path(file)
        self._array: np.ndarray | None = None

    @classmethod
    def build(
        cls,
        paths: Sequence[str],
        size: tuple[int, int],
        cache_dir: str | os.PathLike | None = None,
        tag: str = "",
        num_workers: int = 0,
        progress: bool = True,
    ) -> "ImageCache":
        """Open the cache of `paths` resized to size = (H, W), decoding and writing it first if absent."""
        paths = [str(p) for p in paths]
        if not paths:
            raise DatasetError(f"cannot build an image cache for '{tag or 'untagged'}': the image list is empty")
        size = (int(size[0]), int(size[1]))
        key = cache_key(paths, size, tag)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag).strip("_") or "images"
        file = Path(cache_dir or default_cache_dir()) / f"{slug}-{size[0]}x{size[1]}-{key[:20]}.npy"
        if not _valid(file, len(paths), size):
            ensure_writable_dir(file.parent, "image cache folder (data.cache_dir or $MCJA_CACHE_DIR)")
            # The lock only saves duplicate work (e.g. every DDP rank building at once): each builder
            # writes its own temp file and renames it into place, so readers never see a partial file.
            with _build_lock(file):
                if not _valid(file, len(paths), size):
                    _write(file, paths, size, num_workers, progress, tag)
        return cls(file)

    @property
    def array(self) -> np.ndarray:
        """The whole cache as a read-only memory-mapped uint8 array [N, H, W, 3]."""
        if self._array is None:
            self._array = np.load(self.file, mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return self.array.shape[0]

    def __getitem__(self, index: int | slice | np.ndarray | Sequence[int]) -> np.ndarray:
        """uint8 [H, W, 3] for an int, [B, H, W, 3] for a slice or an index array."""
        if isinstance(index, (int, np.integer, slice)):
            return self.array[index]
        return self.array[np.asarray(index, dtype=np.int64)]

    def batch(self, indices: slice | np.ndarray | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """The images at `indices` as a contiguous uint8 tensor [B, 3, H, W]."""
        if isinstance(indices, torch.Tensor):
            indices = indices.cpu().numpy()
        images = self[indices].transpose(0, 3, 1, 2)
        out = torch.empty(images.shape, dtype=torch.uint8)
        out.numpy()[...] = images  # one copy out of the read-only memory map, into channels-first order
        return out

    def __getstate__(self) -> dict:
        return {"file": str(self.file)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["file"])

    def __repr__(self) -> str:
        return f"ImageCache({str(self.file)!r})"


def _valid(file: Path, n: int, size: tuple[int, int]) -> bool:
    """Whether `file` is a finished cache of the expected shape (a truncated or foreign file is not)."""
    if not file.is_file():
        return False
    try:
        array = np.load(file, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return array.dtype == np.uint8 and array.shape == (n, size[0], size[1], 3)


@contextmanager
def _build_lock(file: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `file` while building it."""
    file.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(file.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(file: Path, paths: list[str], size: tuple[int, int], num_workers: int, progress: bool, tag: str) -> None:
    """Decode, resize and store every image into `file`, atomically."""
    from tqdm import tqdm

    pool = ThreadPoolExecutor(max_workers=num_workers) if num_workers > 1 else None
    try:
        with atomic_path(file) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), *size, 3))
            # PIL releases the GIL while decoding and resizing, so threads scale without pickling images.
            images = (pool.map if pool else map)(lambda p: load_resized(p, size), paths)
            for i, image in enumerate(tqdm(images, total=len(paths), desc=f"caching {tag or 'images'}",
                                           unit="img", disable=not progress, leave=False)):
                out[i] = image
            out.flush()
            del out
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
