"""The one reader of PyTorch files: weights-only, so a file a user hands over can never run code.

Every checkpoint, state dict and ImageNet file the package opens goes through `read_checkpoint` (or
`read_torch_file` for the raw content). Only tensors, numbers, strings, containers and the few numpy types our own
resume state holds (numpy's RNG state) are accepted; anything else is refused by name, without unpickling it.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from mcja.errors import CheckpointError
from mcja.input_size import DEFAULT_IMAGE_SIZE, checked_size

FORMAT = "mcja-checkpoint"  # the `format` entry of the files `mcja` writes
# how a legacy (pre-zip) torch.save file begins: pickle PROTO 2, then torch's magic number as a 10-byte LONG1
_LEGACY_HEAD = b"\x80\x02\x8a\x0a" + torch.serialization.MAGIC_NUMBER.to_bytes(10, "little")
_UNSUPPORTED_GLOBAL = re.compile(r"unsupported global:? (?:GLOBAL )?([\w.]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Checkpoint:
    """One file read once: its path and content (our payload, a state dict, or a wrapper around one)."""

    path: Path
    content: Any

    @property
    def is_ours(self) -> bool:
        """True for a file `mcja` wrote (model arch + state dict + config)."""
        return isinstance(self.content, Mapping) and self.content.get("format") == FORMAT

    @property
    def config(self) -> dict[str, Any] | None:
        """The training config stored in our checkpoints; None for reference-code state dicts."""
        config = self.content.get("config") if self.is_ours else None
        return config if isinstance(config, dict) else None

    @property
    def image_size(self) -> tuple[int, int] | None:
        """The (H, W) the model was trained at, when the file says."""
        size = ((self.config or {}).get("data") or {}).get("image_size")
        return (int(size[0]), int(size[1])) if isinstance(size, (list, tuple)) and len(size) == 2 else None


def read_checkpoint(path: str | os.PathLike | Checkpoint, map_location: Any = "cpu") -> Checkpoint:
    """Read a file once, weights-only (see the module docstring); a Checkpoint passes through unchanged."""
    if isinstance(path, Checkpoint):
        return path
    return Checkpoint(Path(path), read_torch_file(path, map_location))


def resolve_image_size(checkpoint: str | os.PathLike | Checkpoint | None,
                       override: Sequence[int] | None = None) -> tuple[int, int]:
    """Input (H, W): `override`, else the checkpoint's `data.image_size`, else DEFAULT_IMAGE_SIZE (reference state
    dicts carry no config to say otherwise)."""
    size = override
    if size is None and checkpoint is not None:
        size = read_checkpoint(checkpoint).image_size
    return DEFAULT_IMAGE_SIZE if size is None else checked_size(size)


def read_torch_file(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """The content of a `torch.save` file (zip or legacy format), weights-only; errors are one-line CheckpointErrors."""
    path = Path(path)
    is_zip = _check_kind(path)
    try:
        with torch.serialization.safe_globals(_allowed_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's advice about pickle protocols: the error below says it all
            # zip files are memory-mapped (tensors are paged in when used); the legacy format cannot be
            return torch.load(path, map_location=map_location, weights_only=True, mmap=is_zip)
    except Exception as err:  # torch raises many types (pickle, zip, runtime) for a bad file
        raise CheckpointError(_reason(path, err)) from None


def _check_kind(path: Path) -> bool:
    """True for a zip file, False for torch's legacy format; CheckpointError saying what the file is otherwise."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: a directory, expected a checkpoint file (.pt)")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file, expected a checkpoint file (.pt)")
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(_LEGACY_HEAD):
        return False
    if not head:
        what = "an empty file"
    elif head[:1] == b"\x80":  # a pickle's PROTO opcode, without torch's legacy magic number
        raise CheckpointError(f"{path}: a raw pickle, not a PyTorch zip checkpoint (mcja never unpickles files)")
    elif b"\0" not in head and _is_text(head):
        what = "a text file"
    else:
        what = "neither a zip archive nor torch's legacy format"
    raise CheckpointError(f"{path}: not a PyTorch checkpoint ({what})")


def _is_text(head: bytes) -> bool:
    """Whether the first bytes of a file read as UTF-8 text (a multi-byte character may be cut at the end)."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start >= len(head) - 3
    return True


def _reason(path: Path, err: Exception) -> str:
    """One line that says why, without torch's advice to load the file unsafely."""
    text = str(err)
    refused = _UNSUPPORTED_GLOBAL.search(text)
    if refused:
        return (f"{path}: not a safe checkpoint: it asks to import {refused[1]}, and mcja reads only tensors, "
                f"numbers, strings and containers (the file was not run)")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "weights_only" not in ln]
    return f"{path}: not a readable PyTorch checkpoint ({lines[0] if lines else type(err).__name__})"


def _allowed_globals() -> list[Any]:
    """numpy's array and scalar types: what numpy's RNG state (saved for exact resume) pickles to."""
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed np.core
    dtypes = [type(np.dtype(code)) for code in "?bBhHiIlLqQefdg"]
    return [np.ndarray, np.dtype, core.multiarray._reconstruct, core.multiarray.scalar, *dtypes]
