"""Atomic writes: a crash or Ctrl-C never leaves a half-written file in place of a good one."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mcja.errors import ConfigError, MCJAError

TEMP_SUFFIX = ".tmp"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is flushed to disk and renamed onto `path` (atomic on
    POSIX, durable across a power loss). A full disk is one MCJAError that says the old file is intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        _fsync(tmp_path)
        os.replace(tmp_path, path)
        _fsync(path.parent)  # the rename itself reaches the disk
    except (OSError, RuntimeError) as err:  # torch.save reports a full disk as a RuntimeError
        if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or _nearly_full(path.parent):
            kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
            raise MCJAError(f"{path}: disk full while writing it; {kept}. Free space and run again") from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files an interrupted atomic write left in `folder` (`.NAME.*.tmp`); returns them.

    Call it only while holding the folder (e.g. a run's lock): a live writer's temporary file looks the same.
    """
    stale = [p for p in Path(folder).glob(f".*{TEMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _nearly_full(folder: Path) -> bool:
    """Less than 1 MiB left, even for root: the likely cause of a failed write."""
    st = os.statvfs(folder)
    return st.f_bfree * st.f_frsize < 1 << 20


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_writable_dir(path: str | os.PathLike, setting: str) -> Path:
    """The absolute `path` once a file could be written in it (or in its nearest existing parent, where it will be
    made); ConfigError naming `setting` otherwise. Checked before any work, so a bad output path fails at once."""
    target = Path(path).expanduser().absolute()
    _check_writable(target, f"{setting} {target}")
    return target


def ensure_writable_file(path: str | os.PathLike, setting: str) -> Path:
    """The absolute `path` once it is not a folder and its folder is writable (see ensure_writable_dir)."""
    target = Path(path).expanduser().absolute()
    if target.is_dir():
        raise ConfigError(f"{setting} {target}: is a folder; expected a file name")
    _check_writable(target.parent, f"{setting} {target}")
    return target


def _check_writable(folder: Path, label: str) -> None:
    """ConfigError starting with `label` unless a file can be made in `folder` or its nearest existing parent."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{label}: {existing} is a file, not a folder")
    try:  # a real write: permission bits say nothing for root, nor for read-only file systems
        fd, probe = tempfile.mkstemp(prefix=".mcja-write-test-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(f"{label}: cannot write in {existing} ({err.strerror or err})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented JSON to `path` atomically; NaN or infinity raise ValueError (they are not JSON)."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=False, default=json_default, allow_nan=False)
    except ValueError as err:  # a bare NaN would make the whole file unreadable to strict JSON parsers
        raise ValueError(f"{path}: refusing to write NaN or infinity into JSON ({err})") from None
    return atomic_write_text(path, text + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """`torch.save` to `path` atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def json_default(o: Any) -> Any:
    """Make numpy / torch scalars and arrays JSON-serialisable."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
