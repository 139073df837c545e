"""The index's SQLite database: one row per image (path, size, mtime, labels, feature row) and the identity.

Table `images`: `id` (stable, never reused: AUTOINCREMENT), `path` (TEXT; a name that is not UTF-8: its raw
bytes as a BLOB, see `db_path`), `size`, `mtime_ns`, `pid`, `camera`,
`modality` (NULL when unknown), `row` (its row in the feature file; NULL while pending extraction) and `error`
(why it could not be read, under --skip-bad) and `indexed` (its current row is in the saved search structure).
Table `meta`: JSON values by key (identity, source, counters).
Every change is one transaction, so a killed build leaves the database as of its last committed chunk.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from mcja.errors import DatasetError
from mcja.utils.names import printable

DB_NAME = "index.sqlite"
FORMAT = "mcja-gallery-index"
FORMAT_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, pid INTEGER, camera INTEGER, modality INTEGER, row INTEGER, error TEXT,
    indexed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS images_row ON images(row);
"""
# The identity keys that must match between an index and whoever adds to or queries it.
IDENTITY_KEYS = ("checkpoint_sha256", "image_size", "views", "feature_dim", "dtype", "preprocessing")


def db_path(path: str) -> str | bytes:
    """A path as the database stores it: TEXT when it is valid Unicode (every UTF-8 name), else the name's raw
    bytes as a BLOB (a non-UTF-8 name, held in Python with surrogate escapes, which SQLite cannot encode)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def py_path(value: str | bytes) -> str:
    """A stored path back as Python's str for it (bytes -> `os.fsdecode`, surrogate escapes), the same file."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


@dataclass
class ImageRow:
    """One image as scanned from the source: path, file size and mtime, labels when known."""

    path: str
    size: int
    mtime_ns: int
    pid: int | None = None
    camera: int | None = None
    modality: int | None = None


class Store:
    """The SQLite database of an index folder: opened read-only (never written by readers) unless `create`, or
    until `make_writable` (a writer, holding the folder's writer lock)."""

    def __init__(self, folder: str | Path, create: bool = False) -> None:
        self.folder = Path(folder).absolute()
        self.file = self.folder / DB_NAME
        if not create and not self.file.is_file():
            raise DatasetError(f"{self.folder}: not an mcja index (no {DB_NAME}; build one with `mcja index build`)")
        # a zero-byte file is what a create killed at once leaves: nothing to read, nothing to lose
        exists = self.file.is_file() and self.file.stat().st_size > 0
        self.writable, blank = False, False
        if not create and not exists:
            raise DatasetError(f"{self.file}: an empty file, not an mcja gallery index database")
        if exists:
            self.db = self._connect()
            blank = create and self._tables() == 0  # made by a create killed before its first transaction
            if not blank:
                self._check_format()
        if create:
            self.make_writable()
            if not exists or blank:
                with self.transaction() as db:  # schema and format together: a database is either ours or blank
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        db.execute(statement)
                    self.set("format", {"name": FORMAT, "version": FORMAT_VERSION})

    def _connect(self) -> sqlite3.Connection:
        """A connection: read-only (`mode=ro`: nothing, not even a schema, is written) unless `self.writable`."""
        try:
            if not self.writable:
                return sqlite3.connect(self.file.as_uri() + "?mode=ro", uri=True, isolation_level=None)
            self.folder.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.file, isolation_level=None)  # transactions are explicit (see `transaction`)
        except sqlite3.DatabaseError as err:
            raise DatasetError(f"{self.file}: not a readable index database ({err})") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer's commit (docs/index-format.md)
        except sqlite3.OperationalError:
            pass  # another connection is open: the switch happens at a later write
        return db

    def _tables(self) -> int:
        """How many tables the database has."""
        try:
            return int(self.db.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
        except sqlite3.DatabaseError as err:
            raise DatasetError(f"{self.file}: not a readable index database ({err})") from None

    def _check_format(self) -> None:
        """A one-line DatasetError unless the database is an mcja gallery index of this format version."""
        try:
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
                raise DatasetError(f"{self.file}: not an mcja gallery index database (no meta table)")
            fmt = self.get("format")
        except sqlite3.DatabaseError as err:
            raise DatasetError(f"{self.file}: not a readable index database ({err})") from None
        if not isinstance(fmt, dict) or fmt.get("name") != FORMAT:
            raise DatasetError(f"{self.file}: not an mcja gallery index database (format {fmt!r})")
        if fmt.get("version") != FORMAT_VERSION:
            raise DatasetError(f"{self.file}: index format version {fmt.get('version')}, this mcja reads {FORMAT_VERSION}")

    def make_writable(self) -> None:
        """Reopen the database for writing (a writer does this after taking the folder's writer lock)."""
        if self.writable:
            return
        if hasattr(self, "db"):
            self.db.close()
        self.writable = True
        self.db = self._connect()

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change: committed on success, rolled back on any exception (a kill rolls back too)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the database of one moment."""
        self.db.execute("BEGIN")
        try:
            yield self.db
        finally:
            self.db.execute("COMMIT")

    def get(self, key: str, default: Any = None) -> Any:
        """A meta value (JSON-decoded), `default` when absent."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        """Set a meta value (inside a transaction)."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def scanned(self) -> dict[str, tuple[int, int, int]]:
        """path -> (id, size, mtime_ns) of every image the index knows."""
        return {py_path(p): (i, s, m) for i, p, s, m in self.db.execute("SELECT id, path, size, mtime_ns FROM images")}

    def apply_scan(self, new: Sequence[ImageRow], changed: Sequence[tuple[int, ImageRow]], gone: Sequence[int]) -> None:
        """Insert new images and reset changed ones as pending (keeping their ids), delete gone ids: one transaction."""
        with self.transaction() as db:
            # the search structure drops these ids at its next refresh (removing an absent id is harmless)
            self.set("to_remove", sorted(set(self.get("to_remove", [])) | set(gone) | {i for i, _ in changed}))
            db.executemany("DELETE FROM images WHERE id = ?", [(i,) for i in gone])
            db.executemany("UPDATE images SET size = ?, mtime_ns = ?, pid = ?, camera = ?, modality = ?, row = NULL, "
                           "error = NULL, indexed = 0 WHERE id = ?",
                           [(r.size, r.mtime_ns, r.pid, r.camera, r.modality, i) for i, r in changed])
            db.executemany("INSERT INTO images (path, size, mtime_ns, pid, camera, modality) VALUES (?, ?, ?, ?, ?, ?)",
                           [(db_path(r.path), r.size, r.mtime_ns, r.pid, r.camera, r.modality) for r in new])

    def pending(self) -> list[tuple[int, str]]:
        """(id, path) of the images still to extract, in id order."""
        return [(i, py_path(p)) for i, p in
                self.db.execute("SELECT id, path FROM images WHERE row IS NULL AND error IS NULL ORDER BY id")]

    def commit_rows(self, rows: Iterable[tuple[int, int]], errors: Iterable[tuple[int, str]], n_rows: int) -> None:
        """Record extracted (id, feature row) pairs, unreadable (id, reason) and the feature file's row count."""
        with self.transaction() as db:
            db.executemany("UPDATE images SET row = ? WHERE id = ?", [(r, i) for i, r in rows])
            db.executemany("UPDATE images SET error = ? WHERE id = ?", [(printable(e), i) for i, e in errors])
            self.set("rows", int(n_rows))

    def live(self, where: str = "", args: Sequence[Any] = ()) -> list[tuple[int, int]]:
        """(id, feature row) of the searchable images (optionally filtered by an SQL condition), in id order."""
        cond = f" AND ({where})" if where else ""
        return list(self.db.execute(f"SELECT id, row FROM images WHERE row IS NOT NULL{cond} ORDER BY id", args))

    def describe(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """id -> {path, pid, camera, modality} for the given ids."""
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):  # SQLite limits the number of bound parameters
            part = [int(i) for i in ids[start : start + 500]]
            marks = ",".join("?" * len(part))
            for i, path, pid, cam, mod in self.db.execute(
                    f"SELECT id, path, pid, camera, modality FROM images WHERE id IN ({marks})", part):
                out[i] = {"path": py_path(path), "pid": pid, "camera": cam, "modality": mod}
        return out

    def labels(self) -> dict[str, tuple[int, int, int, tuple[int | None, int | None, int | None]]]:
        """path -> (id, size, mtime_ns, (pid, camera, modality)) of every image the index knows."""
        return {py_path(p): (i, s, m, (pid, cam, mod)) for i, p, s, m, pid, cam, mod in
                self.db.execute("SELECT id, path, size, mtime_ns, pid, camera, modality FROM images")}

    def relabel(self, rows: Sequence[tuple[int, ImageRow]]) -> None:
        """Set the labels of (id, image) pairs whose file is unchanged (no re-extraction): one transaction."""
        with self.transaction() as db:
            db.executemany("UPDATE images SET pid = ?, camera = ?, modality = ? WHERE id = ?",
                           [(r.pid, r.camera, r.modality, i) for i, r in rows])

    def present(self, column: str) -> list[int]:
        """The distinct known values of a label column (`camera`, `modality`) among the searchable images."""
        if column not in ("camera", "modality"):
            raise ValueError(f"not a label column: {column}")
        return [v for (v,) in self.db.execute(f"SELECT DISTINCT {column} FROM images WHERE row IS NOT NULL AND "
                                              f"{column} IS NOT NULL ORDER BY {column}")]

    def counts(self) -> dict[str, int]:
        """Numbers of images: searchable, pending extraction, unreadable."""
        q = "SELECT COUNT(*) FROM images WHERE "
        one = lambda cond: int(self.db.execute(q + cond).fetchone()[0])  # noqa: E731
        return {"images": one("row IS NOT NULL"), "pending": one("row IS NULL AND error IS NULL"),
                "unreadable": one("error IS NOT NULL")}

    def errors(self) -> list[str]:
        """The unreadable images' reasons."""
        return [e for (e,) in self.db.execute("SELECT error FROM images WHERE error IS NOT NULL ORDER BY id")]

    def unindexed(self) -> list[tuple[int, int]]:
        """(id, feature row) of searchable images not yet in the saved search structure, in id order."""
        return list(self.db.execute("SELECT id, row FROM images WHERE row IS NOT NULL AND indexed = 0 ORDER BY id"))

    def mark_indexed(self, ids: Sequence[int], structure: dict[str, Any], only: bool = False) -> None:
        """After the search structure was saved: `ids` are in it (with `only`: they alone, after a rebuild), nothing
        waits for removal, its record. One transaction, so a reader never sees a half-marked index."""
        with self.transaction() as db:
            if only:
                db.execute("UPDATE images SET indexed = 0")
            db.executemany("UPDATE images SET indexed = 1 WHERE id = ?", [(int(i),) for i in ids])
            self.set("to_remove", [])
            self.set("structure", structure)
