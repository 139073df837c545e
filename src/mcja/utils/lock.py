"""OS-level exclusive locks (`flock`) on a lock file that names its holder (pid, command, start time).

The kernel drops a flock when its holder ends, even after SIGKILL, so a crashed holder never blocks anyone. The
holder's record is cleared when it releases the lock; a record naming a dead process is a crashed holder's.
Where `fcntl` is missing (not POSIX) nothing is locked.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

POLL_S = 0.05  # how often a waiting process tries the lock again


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its lock file records it (pid None when the record could not be read)."""

    pid: int | None
    command: str = "?"
    since: float | None = None

    def describe(self) -> str:
        """'pid 123 (mcja index update, since 17:03:12)'."""
        when = time.strftime("%H:%M:%S", time.localtime(self.since)) if self.since is not None else "?"
        return f"pid {self.pid if self.pid is not None else '?'} ({self.command}, since {when})"


class Busy(Exception):
    """Another process holds the lock."""

    def __init__(self, holder: Holder) -> None:
        super().__init__(holder.describe())
        self.holder = holder


def acquire(path: Path, command: str, timeout: float | None = 0.0,
            on_wait: Callable[[Holder], None] | None = None) -> int | None:
    """Take the exclusive lock on `path` (made if missing) and record this process in it; wait up to `timeout`
    seconds (None: for as long as it takes), calling `on_wait(holder)` once when waiting starts; Busy when it gives
    up. Returns the descriptor to `release` (None without fcntl)."""
    if fcntl is None:
        return None
    deadline = None if timeout is None else time.monotonic() + timeout
    waited = False
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            holder = read_holder(path) or Holder(None)
            if deadline is not None and time.monotonic() >= deadline:
                raise Busy(holder) from None
            if not waited and on_wait is not None:
                on_wait(holder)
            waited = True
            time.sleep(POLL_S)
            continue
        if _same_file(fd, path):
            break
        os.close(fd)  # the file was removed (with its folder) by the holder we waited for: lock the new one
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode(), 0)
    return fd


def release(fd: int | None) -> None:
    """Clear the holder's record and drop the lock (closing the descriptor drops the flock)."""
    if fd is None or fd < 0:
        return
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in `path`, None when there is no record (free, or never taken)."""
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return None
    if not text:
        return None
    try:
        rec = json.loads(text)
        return Holder(int(rec["pid"]), str(rec.get("command", "?")), rec.get("since"))
    except (ValueError, KeyError, TypeError):
        return Holder(int(text) if text.isdigit() else None)  # a bare pid, or a record being written


def live_holder(path: Path) -> Holder | None:
    """The recorded holder if its process is alive (a crashed holder's record names a dead one)."""
    holder = read_holder(path)
    if holder is None or holder.pid is None:
        return holder
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return holder


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd`."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
