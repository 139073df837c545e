"""Run folders that never mix: chosen uniquely, locked for the life of the run, cleaned after a failed start.

The lock is an OS-level advisory lock (`flock`) on `RUN_DIR/.lock` (mcja.utils.lock): the kernel drops it when the process ends, even
after SIGKILL, so a crashed run never blocks its own resume. Only the main process of a torchrun launch holds it.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch

from mcja.config import Config
from mcja.engine.runtime import Runtime
from mcja.errors import ConfigError
from mcja.utils.io import remove_stale_temporaries
from mcja.utils.lock import Busy, acquire, release

LOCK_NAME = ".lock"
# What a run writes before its first checkpoint: removed again when the start fails.
_EARLY_FILES = ("config.yaml", "metrics.jsonl", "tensorboard", LOCK_NAME)

class RunFolderBusy(ConfigError):
    """Another process holds the run folder's lock."""


@contextmanager
def new_run_folder(cfg: Config, run_dir: str | Path | None, rt: Runtime) -> Iterator[Path]:
    """A fresh run folder (`run_dir`, or output_dir/name made unique), locked; removed again if the run fails
    before its first checkpoint (`last.pt`) exists, so a failed start leaves nothing that looks like a run."""
    if rt.is_main:
        out, lock, created = _claim(cfg, run_dir)
    else:
        out, lock, created = None, None, False
    out = _agree(out, rt)
    try:
        yield out
    except BaseException:
        if rt.is_main and not (out / "last.pt").exists():
            _remove_early_files(out, created)
        raise
    finally:
        release(lock)


@contextmanager
def locked_run_folder(run_dir: str | Path, rt: Runtime) -> Iterator[Path]:
    """An existing run folder (resume), locked for the life of the run, its stale temporary files removed."""
    out = Path(run_dir)
    lock = _lock(out, required=True) if rt.is_main else None
    try:
        if rt.is_main:
            remove_stale_temporaries(out)
        yield out
    finally:
        release(lock)


def _claim(cfg: Config, run_dir: str | Path | None) -> tuple[Path, int | None, bool]:
    """(folder, lock fd, created?): `run_dir` must be free; otherwise the first free output_dir/name[-N]."""
    if run_dir is not None:
        out = Path(run_dir)
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out, required=True)
        if (out / "last.pt").exists():
            release(lock)
            raise ConfigError(f"{out} already holds a run (last.pt); resume it with --resume {out} or pick another --out")
        return out, lock, created
    skip: set[Path] = set()
    while True:
        out = unused_folder(Path(cfg.output_dir) / cfg.name, lambda p: p in skip or _holds_run(p))
        skip.add(out)
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out, required=False)
        if lock == -1 or _holds_run(out):  # another process took it between our look and our lock
            release(lock)
            continue
        return out, lock, created


def unused_folder(base: Path, taken: Callable[[Path], bool] = Path.exists) -> Path:
    """`base`, else the first of `base-2`, `base-3`, ... that is not `taken`."""
    out, n = base, 1
    while taken(out):
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _holds_run(folder: Path) -> bool:
    return (folder / "last.pt").exists() or (folder / "config.yaml").exists()


def _lock(folder: Path, required: bool) -> int | None:
    """Take `folder/.lock`; if another process holds it: RunFolderBusy when `required`, else -1."""
    try:
        return acquire(folder / LOCK_NAME, "mcja train")
    except Busy as busy:
        if not required:
            return -1
        raise RunFolderBusy(f"{folder} is in use by another mcja process ({busy.holder.describe()}); wait for it to "
                            f"finish, or use another folder") from None


def _agree(out: Path | None, rt: Runtime) -> Path:
    """Every rank uses the folder rank 0 chose."""
    if not rt.distributed:
        assert out is not None
        return out
    holder = [str(out) if out is not None else ""]
    torch.distributed.broadcast_object_list(holder, src=0)
    return Path(holder[0])


def _remove_early_files(out: Path, created: bool) -> None:
    """Remove what a failed start wrote (and the folder itself if this run made it and nothing else is there)."""
    for name in _EARLY_FILES:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        elif target.exists():
            target.unlink()
    remove_stale_temporaries(out)
    if created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()
