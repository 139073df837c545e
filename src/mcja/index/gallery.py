"""GalleryIndex: a persistent, searchable gallery of person crops (an index folder), for tools and services.

    index = GalleryIndex.create("archive.idx", "best.pt", views="mser")  # or GalleryIndex.open(...)
    index.add(["cam1/0001_c1_000.jpg", ...]); index.remove(["cam1/old.jpg"])
    hits = index.search(["query.jpg"], top_k=10, modality="visible")  # one list of dicts per query
"""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from mcja import __version__
from mcja.data.folder import MODALITY_NAMES
from mcja.data.records import INFRARED, MODALITY_BY_CODE, VISIBLE
from mcja.errors import ConfigError, DatasetError
from mcja.index.build import SHARDS, STRUCTURE_NAME, diff_scan, extract_pending, extract_sharded, refresh_structure, relabelled, stat_rows
from mcja.index.faiss_backend import StaleStructure, Structure, load_structure, search_structure
from mcja.index.features import FeatureFile, check_dtype
from mcja.index.store import Store
from mcja.index.writer import WriterLock, writer_at_work
from mcja.inference.extractor import FeatureExtractor, parse_views
from mcja.inference.sources import image_labels
from mcja.utils.names import printable

PREPROCESSING = "RGB, PIL bilinear resize, /255, ImageNet mean/std; BN-neck feature, L2-normalised"
# Keys of the identity that must match: to add images (all) and to query (what changes the query's feature).
ADD_KEYS = ("checkpoint_sha256", "image_size", "preprocessing", "feature_dim", "views")
QUERY_KEYS = ("checkpoint_sha256", "image_size", "preprocessing", "feature_dim")


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (the checkpoint's identity, whatever its name or mtime)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extractor_identity(extractor: FeatureExtractor, views: int, dtype: str) -> dict[str, Any]:
    """What an index's features depend on, for this extractor."""
    if extractor.checkpoint is None:
        raise ConfigError("an index needs a checkpoint file (its sha256 is the index's identity), not a module")
    dim = extractor.feature_dim or int(extractor(np.zeros((1, *extractor.image_size, 3), np.uint8)).shape[-1])
    return {"checkpoint_sha256": file_sha256(extractor.checkpoint), "checkpoint": str(extractor.checkpoint.absolute()),
            "image_size": list(extractor.image_size), "preprocessing": PREPROCESSING, "feature_dim": int(dim),
            "views": int(views), "dtype": dtype, "mcja_version": __version__}


def check_identity(folder: Path, stored: dict[str, Any], mine: dict[str, Any], keys: Sequence[str]) -> None:
    """A one-line ConfigError when `mine` differs from the index's identity in any of `keys`."""
    for key in keys:
        if stored.get(key) != mine.get(key):
            what = "checkpoint (sha256 of its bytes)" if key == "checkpoint_sha256" else key.replace("_", " ")
            raise ConfigError(f"{folder}: this index was built with another {what} ({_short(stored.get(key))}, "
                              f"given {_short(mine.get(key))}); use the index's own, or build a new index")


def _short(value: Any) -> str:
    """A sha256 shortened to 12 characters, anything else as text."""
    return value[:12] if isinstance(value, str) and len(value) == 64 else str(value)


def parse_modality(name: str | int | None) -> int | None:
    """visible / infrared (or their synonyms, 0 / 1) as the modality code; None stays None."""
    if name is None or name in (VISIBLE, INFRARED):
        return name  # type: ignore[return-value]
    code = MODALITY_NAMES.get(str(name).lower())
    if code is None:
        raise ConfigError(f"--modality: expected visible or infrared, got {name!r}")
    return code


def describe_source(source: dict[str, Any] | None) -> str:
    """An index's source in words: `folder DIR` or `list FILE`, and the labels given to images whose path tells
    none (--camera / --modality)."""
    if not source:
        return "none recorded (images added through the Python API)"
    text = f"folder {source['images']}" if source.get("images") else f"list {source['list']}"
    given = [f"{key} {source[key]}" for key in ("camera", "modality") if source.get(key) is not None]
    return printable(text + (f", and for images whose path tells none: {', '.join(given)}" if given else ""))


@dataclass
class _View:
    """What searches read, of one moment: the structure's record in the database, the search structure and the
    (ids, feature rows) it holds, ids ascending."""

    stored: dict[str, Any]
    structure: Structure
    ids: np.ndarray
    rows: np.ndarray


class GalleryIndex:
    """An index folder: SQLite rows + memory-mapped features + a FAISS index (see docs/index-format.md).

    Writes (create, add, remove, sync, repair) hold the folder's writer lock: `lock_timeout` seconds to wait for
    another writer (None: as long as it takes; 0: refuse at once), then a one-line IndexBusy error. Searches take no
    lock: they read the last complete state and notice another writer's changes at their next search."""

    def __init__(self, folder: Path, store: Store, extractor: FeatureExtractor | None,
                 lock: WriterLock | None = None) -> None:
        self.folder, self.store, self.extractor = folder, store, extractor
        self.lock = lock or WriterLock(folder)
        self.identity: dict[str, Any] = store.get("identity") or {}
        if not self.identity:
            raise DatasetError(f"{folder}: index has no identity (its creation was interrupted): run the same "
                               "`mcja index build` again")
        self.feats = FeatureFile(folder, self.identity["dtype"], self.identity["views"], self.identity["feature_dim"],
                                 store.get("rows", 0))
        self._view: _View | None = None  # cached: a search must not read every row

    @classmethod
    def create(cls, folder: str | os.PathLike, checkpoint: str | os.PathLike, views: int | str = 1,
               dtype: str = "float16", kind: str = "auto", source: dict[str, Any] | None = None,
               lock_timeout: float | None = None, lock: WriterLock | None = None,
               **extractor_options: Any) -> "GalleryIndex":
        """A new index folder (or the same one again, to resume it: its identity must match). `lock`: the folder's
        writer lock when the caller holds it already (`mcja index build` holds it across create and sync)."""
        folder = Path(folder).expanduser().absolute()
        n_views = parse_views(views)
        extractor = FeatureExtractor(checkpoint, **extractor_options)
        mine = extractor_identity(extractor, n_views, check_dtype(dtype))
        lock = lock or WriterLock(folder, lock_timeout)
        with lock.hold("GalleryIndex.create"):
            return cls._create(folder, extractor, mine, kind, source, lock)

    @classmethod
    def _create(cls, folder: Path, extractor: FeatureExtractor, mine: dict[str, Any], kind: str,
                source: dict[str, Any] | None, lock: WriterLock) -> "GalleryIndex":
        """`create`'s writes, under the writer lock."""
        store = Store(folder, create=True)
        stored = store.get("identity")
        if stored:
            check_identity(folder, stored, mine, ADD_KEYS + ("dtype",))
            if source is not None and store.get("source") not in (None, source):
                raise ConfigError(f"{folder}: this index holds {describe_source(store.get('source'))}, not "
                                  f"{describe_source(source)}; build this source into another --out (or delete this "
                                  "index folder first)")
            if kind != store.get("kind"):
                with store.transaction():
                    store.set("kind", kind)  # another kind asked for: the structure is rebuilt at the end
        else:
            with store.transaction():
                store.set("identity", mine)
                store.set("kind", kind)
                store.set("source", source)
        return cls(folder, store, extractor, lock)

    @classmethod
    def open(cls, folder: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
             lock_timeout: float | None = None, **extractor_options: Any) -> "GalleryIndex":
        """An existing index, its database opened read-only until a write; with `checkpoint`, able to embed images
        (refused unless it is the index's own)."""
        folder = Path(folder).expanduser().absolute()
        if not folder.is_dir():
            raise DatasetError(f"{folder}: index folder not found")
        store = Store(folder)
        index = cls(folder, store, None, WriterLock(folder, lock_timeout))
        if checkpoint is not None:
            size = extractor_options.pop("image_size", None) or index.identity["image_size"]
            extractor = FeatureExtractor(checkpoint, image_size=size, **extractor_options)
            mine = extractor_identity(extractor, index.identity["views"], index.identity["dtype"])
            check_identity(folder, index.identity, mine, QUERY_KEYS)
            index.extractor = extractor
        return index

    def close(self) -> None:
        """Close the index's database."""
        self.store.close()

    def __len__(self) -> int:
        """Number of searchable images."""
        return self.store.counts()["images"]

    @contextmanager
    def writing(self, command: str = "GalleryIndex") -> Iterator[None]:
        """Hold the folder's writer lock for the block (`command` names this writer to a waiting one); on taking it,
        re-read what another writer may have changed since: the committed feature row count (the database, the
        search structure and the ids are read afresh by every write, and a search re-checks its view)."""
        with self.lock.hold(command) as first:
            if first:
                self.store.make_writable()
                self.feats.rows = self.store.get("rows", 0)
            yield

    def _need_extractor(self) -> FeatureExtractor:
        """The extractor, or a one-line error saying how to give one."""
        if self.extractor is None:
            raise ConfigError(f"{self.folder}: give the index's checkpoint to embed images (GalleryIndex.open(..., "
                              "checkpoint=...))")
        return self.extractor

    def sync(self, paths: Sequence[str | os.PathLike], labels: Callable[[str], tuple] | None = None,
             drop_missing: bool = False, chunk: int = 1024, skip_bad: bool = False, progress: bool = True,
             runtime: Any = None) -> dict[str, int]:
        """Make the index hold `paths`: extract new and changed images (and pending ones of an interrupted run),
        drop images gone from `paths` when `drop_missing`; then refresh the search structure. `labels` gives an
        image's (pid, camera, modality); by default its folders and name tell them. Returns counts. Holds the writer
        lock (under torchrun: rank 0, for every rank)."""
        rank = runtime.rank if runtime is not None else 0
        with self.writing("GalleryIndex.sync") if rank == 0 else nullcontext():
            return self._sync(paths, labels, drop_missing, chunk, skip_bad, progress, runtime)

    def _sync(self, paths: Sequence[str | os.PathLike], labels: Callable[[str], tuple] | None, drop_missing: bool,
              chunk: int, skip_bad: bool, progress: bool, runtime: Any) -> dict[str, int]:
        """`sync`'s work, under the writer lock."""
        extractor = self._need_extractor()
        rank, world = (runtime.rank, runtime.world_size) if runtime is not None else (0, 1)
        scanned = stat_rows([str(Path(p).expanduser().absolute()) for p in paths],
                            labels or image_labels)
        new, changed, gone = diff_scan(self.store, scanned, drop_missing)
        relabel = relabelled(self.store, scanned) if rank == 0 else []
        if rank == 0:
            self.store.apply_scan(new, changed, gone)
            self.store.relabel(relabel)
        if world > 1:
            runtime.barrier()
            done = extract_sharded(extractor, self.store, self.feats, rank, world, runtime.barrier, chunk, skip_bad,
                                   progress)
        else:
            self._raise_stored_errors(skip_bad)
            done = extract_pending(extractor, self.feats, self.store.pending(), self.store.commit_rows, chunk,
                                   skip_bad, progress)
            shutil.rmtree(self.folder / SHARDS, ignore_errors=True)  # an interrupted sharded build's: done without it
        if rank == 0:
            self.feats.rows = self.store.get("rows", 0)
            self._adopt(refresh_structure(self.store, self.feats, self.folder))
        if world > 1:
            runtime.barrier()
        return {"new": len(new), "changed": len(changed), "removed": len(gone), "relabelled": len(relabel),
                "extracted": done}

    def _raise_stored_errors(self, skip_bad: bool) -> None:
        """Without skip_bad, an image recorded as unreadable is retried (and so named again if still bad)."""
        if not skip_bad and self.store.errors():
            with self.store.transaction() as db:
                db.execute("UPDATE images SET error = NULL WHERE error IS NOT NULL")

    def add(self, paths: Sequence[str | os.PathLike], **options: Any) -> dict[str, int]:
        """Add (or re-extract changed) images; keeps everything else."""
        return self.sync(paths, drop_missing=False, **options)

    def remove(self, items: Sequence[str | os.PathLike | bytes | int]) -> int:
        """Remove images by path (str, or a file name's bytes) or id; returns how many were removed."""
        with self.writing("GalleryIndex.remove"):
            known = self.store.scanned()
            ids = {int(x) if isinstance(x, (int, np.integer)) else known.get(
                str(Path(os.fsdecode(x)).expanduser().absolute()), (None,))[0] for x in items}
            ids.discard(None)
            existing = {i for i, _, _ in known.values()}
            gone = sorted(i for i in ids if i in existing)
            self.store.apply_scan([], [], gone)
            self._adopt(refresh_structure(self.store, self.feats, self.folder))
            return len(gone)

    def repair(self) -> dict[str, Any]:
        """Check the database and the feature file against the committed row count (cutting uncommitted bytes),
        then rebuild the search structure from the stored features. Returns what it found and did."""
        with self.writing("GalleryIndex.repair"):
            problem = self.store.db.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise DatasetError(f"{self.store.file}: damaged database ({problem}); build the index again into a "
                                   "new folder")
            top = self.store.db.execute("SELECT MAX(row) FROM images").fetchone()[0]
            if top is not None and top >= self.feats.rows:
                raise DatasetError(f"{self.store.file}: images point to feature row {top}, the feature file holds "
                                   f"{self.feats.rows}; build the index again into a new folder")
            cut = self.feats.trim()
            self._adopt(refresh_structure(self.store, self.feats, self.folder, rebuild=True))
            return {"index": str(self.folder), "feature_rows": self.feats.rows, "cut_bytes": cut,
                    "structure": self.store.get("structure"), **self.store.counts()}

    def _adopt(self, structure: Structure) -> None:
        """Searches read `structure`, just written by this writer, with the rows the database records for it."""
        with self.store.snapshot():
            stored = self.store.get("structure") or {}
            live = self.store.live("indexed = 1")
        self._view = _View(stored, structure, *_ids_rows(live))

    def _current(self, fresh: bool = False) -> _View:
        """The view searches read (loaded on first use); `fresh`: re-loaded first if a writer changed the index."""
        if self._view is None or (fresh and (self.store.get("structure") or {}) != self._view.stored):
            self._view = self._load_view()
        return self._view

    def _load_view(self) -> _View:
        """The last complete state: the rows marked as in the search structure, and that structure, read from one
        snapshot of the database; a structure a writer saved after it (not yet recorded) is searched for the ids of
        the snapshot only (docs/index-format.md)."""
        with self.store.snapshot():
            stored = self.store.get("structure") or {}
            rows = self.store.get("rows", 0)
            live = self.store.live("indexed = 1")
            behind = bool(self.store.unindexed() or self.store.get("to_remove"))
        at_work = self.lock.held or writer_at_work(self.folder) is not None
        if behind and not at_work:
            raise DatasetError(f"{self.folder}: the index was interrupted before its search structure was "
                               f"written: run `mcja index update {self.folder}`")
        path, kind, params = self.folder / STRUCTURE_NAME, stored.get("kind", "flat"), stored.get("params", {})
        try:
            structure = load_structure(path, kind, params, stored.get("file"))
        except StaleStructure:
            if not at_work:
                raise
            structure = load_structure(path, kind, params)
        self.feats.rows = max(self.feats.rows, int(rows))
        return _View(stored, structure, *_ids_rows(live))

    @property
    def structure(self) -> Structure:
        """The search structure, loaded on first use."""
        return self._current().structure

    def embed(self, images: Sequence[Any], skip_bad: bool = False, progress: bool = False) -> tuple[torch.Tensor, list[int], list[str]]:
        """Query features [Q, D] (view 0) of images, with the indices kept and the skipped ones' reasons."""
        found = self._need_extractor().extract(list(images), skip_bad=skip_bad, progress=progress, desc="queries",
                                               views=1)
        return found.features, found.kept, found.skipped

    def search(self, queries: Any, top_k: int = 10, modality: str | int | None = None,
               camera: int | Sequence[int] | None = None, rerank: bool = False, mser_preset: str | None = None,
               mser_k1: int | None = None, mser_k2: int | None = None, mser_lambda: float | None = None
               ) -> list[list[dict[str, Any]]]:
        """Ranked results per query (images, or features [Q, D]): dicts with id, path, score, pid, camera, modality.
        With `rerank`, MSER's parameters are `mser_preset` (default RegDB's, neighbours from all items; or sysu,
        llcm) with any of `mser_k1`, `mser_k2`, `mser_lambda` over it."""
        from mcja.index.search import rerank_params, search_features

        params = rerank_params(rerank, mser_preset, mser_k1, mser_k2, mser_lambda)  # bad values fail before work
        feats = queries if isinstance(queries, (np.ndarray, torch.Tensor)) else self.embed(queries)[0]
        return search_features(self, torch.as_tensor(np.asarray(feats), dtype=torch.float32), top_k, modality,
                               camera, params or False)

    def allowed_ids(self, modality: str | int | None, camera: int | Sequence[int] | None) -> np.ndarray | None:
        """Ids passing the filters (None when there is no filter). A filter on a label no image has, or filters
        that no image passes together, are a one-line ConfigError (never a silently empty result)."""
        conds, args, named = [], [], []
        if modality is not None:
            code = parse_modality(modality)
            named.append(f"--modality {MODALITY_BY_CODE[code]}")
            self._require_labels("modality", [code], named[-1])
            conds.append("modality = ?")
            args.append(code)
        if camera is not None:
            cams = [int(camera)] if isinstance(camera, (int, np.integer)) else [int(c) for c in camera]
            named.append("--camera " + " ".join(map(str, cams)))
            self._require_labels("camera", cams, named[-1])
            conds.append(f"camera IN ({','.join('?' * len(cams))})")
            args.extend(cams)
        if not conds:
            return None
        ids = np.array([i for i, _ in self.store.live(" AND ".join(conds), args)], dtype=np.int64)
        if len(ids) == 0:
            raise ConfigError(f"{' '.join(named)}: no image in this index passes these filters together (each alone "
                              "matches some)")
        return ids

    def _require_labels(self, column: str, wanted: Sequence[int], option: str) -> None:
        """A ConfigError naming the wanted labels (of `column`) that no searchable image has, and those present."""
        present = self.store.present(column)
        show = (lambda v: MODALITY_BY_CODE[v]) if column == "modality" else str  # noqa: E731
        if not present:
            raise ConfigError(f"{option}: no image in this index has a {column}: build it with --{column} or from a "
                              "layout that tells it (docs/index-format.md)")
        missing = [show(v) for v in wanted if v not in present]
        if missing:
            plural = {"camera": "cameras", "modality": "modalities"}[column]
            raise ConfigError(f"{option}: no image in this index has {column} {', '.join(missing)} ({plural} present: "
                              f"{', '.join(show(v) for v in present)})")

    def id_rows(self, fresh: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(ids, feature rows) of the searchable images, ids ascending (those of the last search's view; `fresh`:
        re-loaded first if another writer changed the index, as a search does)."""
        view = self._current(fresh)
        return view.ids, view.rows

    def run_search(self, q: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) [Q, k] from the search structure (ids -1 where fewer than k qualify); first re-loaded if
        another writer changed the index since the last search."""
        view = self._current(fresh=True)
        return search_structure(view.structure, self.feats, view.ids, view.rows, q, k, allowed)

    def info(self) -> dict[str, Any]:
        """What the index holds: identity, counts, source, search structure."""
        from mcja.index.build import shard_info

        return {"index": str(self.folder), **self.store.counts(), "identity": self.identity,
                "source": self.store.get("source"), "kind": self.store.get("kind"),
                "structure": self.store.get("structure"), "feature_rows": self.feats.rows,
                "shards": shard_info(self.folder)}


def _ids_rows(live: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, rows) arrays of (id, row) pairs."""
    return np.array([i for i, _ in live], dtype=np.int64), np.array([r for _, r in live], dtype=np.int64)
