"""One writer per index folder: an OS-level lock on `writer.lock` (mcja.utils.lock), held for a whole write.

Build, update, repair and GalleryIndex's create / add / remove / sync (and so `mcja serve`'s writes) hold it;
readers take no lock. A waiting command says once on stderr whom it waits for; `timeout` 0 refuses at once.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mcja.errors import MCJAError
from mcja.utils.lock import Busy, Holder, acquire, live_holder, release

LOCK_NAME = "writer.lock"


class IndexBusy(MCJAError):
    """Another process writes the index, and this one would not (or no longer) wait."""


class WriterLock:
    """The writer lock of an index folder; re-entrant for its owner (a build holds it across create and sync).

    `timeout`: seconds to wait for another writer (None: as long as it takes, 0: refuse at once). A disabled lock
    (torchrun's ranks other than 0, whose rank 0 holds it) takes nothing."""

    def __init__(self, folder: Path, timeout: float | None = None, enabled: bool = True) -> None:
        self.folder, self.timeout, self.enabled = Path(folder), timeout, enabled
        self._fd: int | None = None
        self._depth = 0

    @property
    def held(self) -> bool:
        """Whether this owner holds the lock now."""
        return self._depth > 0

    @contextmanager
    def hold(self, command: str) -> Iterator[bool]:
        """Hold the lock for the block (`command` names this writer to others); yields True when this call took it,
        False when its owner already held it."""
        first = self._depth == 0
        if first and self.enabled:
            try:
                self._fd = acquire(self.folder / LOCK_NAME, command, self.timeout, self._waiting)
            except Busy as busy:
                raise IndexBusy(f"{self.folder}: another writer holds the index: {busy.holder.describe()}; try again "
                                "when it has finished") from None
        self._depth += 1
        try:
            yield first
        finally:
            self._depth -= 1
            if self._depth == 0:
                release(self._fd)
                self._fd = None

    def _waiting(self, holder: Holder) -> None:
        print(f"{self.folder}: waiting for the writer lock held by {holder.describe()} ...", file=sys.stderr,
              flush=True)


def writer_at_work(folder: Path) -> Holder | None:
    """The live process that holds (or held until a moment ago) the folder's writer lock, None when there is none."""
    return live_holder(Path(folder) / LOCK_NAME)
