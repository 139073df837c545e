"""GalleryIndex: a persistent, searchable gallery of person crops (an index folder), for tools and services.

    index = GalleryIndex.create("archive.idx", "best.pt", views="mser")  # or GalleryIndex.open(...)
    index.add(["cam1/0001_c1_000.jpg", ...]); index.remove(["cam1/old.jpg"])
    hits = index.search(["query.jpg"], top_k=10, modality="visible")  # one list of dicts per query
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from mcja import __version__
from mcja.data.folder import MODALITY_NAMES
from mcja.data.records import INFRARED, MODALITY_BY_CODE, VISIBLE
from mcja.errors import ConfigError, DatasetError
from mcja.index.build import STRUCTURE_NAME, diff_scan, extract_pending, extract_sharded, refresh_structure, relabelled, stat_rows
from mcja.index.faiss_backend import Structure, load_structure, search_structure
from mcja.index.features import FeatureFile, check_dtype
from mcja.index.store import Store
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


class GalleryIndex:
    """An index folder: SQLite rows + memory-mapped features + a FAISS index (see docs/index-format.md)."""

    def __init__(self, folder: Path, store: Store, extractor: FeatureExtractor | None) -> None:
        self.folder, self.store, self.extractor = folder, store, extractor
        self.identity: dict[str, Any] = store.get("identity") or {}
        if not self.identity:
            raise DatasetError(f"{folder}: index has no identity (its creation was interrupted): build it again")
        self.feats = FeatureFile(folder, self.identity["dtype"], self.identity["views"], self.identity["feature_dim"],
                                 store.get("rows", 0))
        self._structure: Structure | None = None
        self._id_rows: tuple[np.ndarray, np.ndarray] | None = None  # cached: a search must not read every row

    @classmethod
    def create(cls, folder: str | os.PathLike, checkpoint: str | os.PathLike, views: int | str = 1,
               dtype: str = "float16", kind: str = "auto", source: dict[str, Any] | None = None,
               **extractor_options: Any) -> "GalleryIndex":
        """A new index folder (or the same one again, to resume it: its identity must match)."""
        folder = Path(folder).expanduser().absolute()
        n_views = parse_views(views)
        extractor = FeatureExtractor(checkpoint, **extractor_options)
        mine = extractor_identity(extractor, n_views, check_dtype(dtype))
        store = Store(folder, create=True)
        stored = store.get("identity")
        if stored:
            check_identity(folder, stored, mine, ADD_KEYS + ("dtype",))
            if source is not None and store.get("source") not in (None, source):
                raise ConfigError(f"{folder}: this index holds {describe_source(store.get('source'))}, not "
                                  f"{describe_source(source)}; to change what it holds use "
                                  "`mcja index update`, or build a new index")
            if kind != store.get("kind"):
                with store.transaction():
                    store.set("kind", kind)  # another kind asked for: the structure is rebuilt at the end
        else:
            with store.transaction():
                store.set("identity", mine)
                store.set("kind", kind)
                store.set("source", source)
        return cls(folder, store, extractor)

    @classmethod
    def open(cls, folder: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
             **extractor_options: Any) -> "GalleryIndex":
        """An existing index; with `checkpoint`, able to embed images (refused unless it is the index's own)."""
        folder = Path(folder).expanduser().absolute()
        if not folder.is_dir():
            raise DatasetError(f"{folder}: index folder not found")
        store = Store(folder)
        index = cls(folder, store, None)
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
        image's (pid, camera, modality); by default its folders and name tell them. Returns counts."""
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
        if rank == 0:
            self.feats.rows = self.store.get("rows", 0)
            self._structure, self._id_rows = refresh_structure(self.store, self.feats, self.folder), None
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
        known = self.store.scanned()
        ids = {int(x) if isinstance(x, (int, np.integer)) else known.get(str(Path(os.fsdecode(x)).expanduser().absolute()),
                                                                         (None,))[0] for x in items}
        ids.discard(None)
        existing = {i for i, _, _ in known.values()}
        gone = sorted(i for i in ids if i in existing)
        self.store.apply_scan([], [], gone)
        self._structure, self._id_rows = refresh_structure(self.store, self.feats, self.folder), None
        return len(gone)

    @property
    def structure(self) -> Structure:
        """The search structure, loaded on first use."""
        if self._structure is None:
            stored = self.store.get("structure") or {}
            if self.store.unindexed() or self.store.get("to_remove"):
                raise DatasetError(f"{self.folder}: the index was interrupted before its search structure was "
                                   "written: run `mcja index update` on it")
            self._structure = load_structure(self.folder / STRUCTURE_NAME, stored.get("kind", "flat"),
                                             stored.get("params", {}))
        return self._structure

    def embed(self, images: Sequence[Any], skip_bad: bool = False, progress: bool = False) -> tuple[torch.Tensor, list[int], list[str]]:
        """Query features [Q, D] (view 0) of images, with the indices kept and the skipped ones' reasons."""
        found = self._need_extractor().extract(list(images), skip_bad=skip_bad, progress=progress, desc="queries",
                                               views=1)
        return found.features, found.kept, found.skipped

    def search(self, queries: Any, top_k: int = 10, modality: str | int | None = None,
               camera: int | Sequence[int] | None = None, rerank: bool = False) -> list[list[dict[str, Any]]]:
        """Ranked results per query (images, or features [Q, D]): dicts with id, path, score, pid, camera, modality."""
        from mcja.index.search import search_features

        feats = queries if isinstance(queries, (np.ndarray, torch.Tensor)) else self.embed(queries)[0]
        return search_features(self, torch.as_tensor(np.asarray(feats), dtype=torch.float32), top_k, modality,
                               camera, rerank)

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

    def id_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, feature rows) of the searchable images, ids ascending."""
        if self._id_rows is None:
            live = self.store.live()
            self._id_rows = (np.array([i for i, _ in live], dtype=np.int64),
                             np.array([r for _, r in live], dtype=np.int64))
        return self._id_rows

    def run_search(self, q: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) [Q, k] from the search structure (ids -1 where fewer than k qualify)."""
        ids, rows = self.id_rows()
        return search_structure(self.structure, self.feats, ids, rows, q, k, allowed)

    def info(self) -> dict[str, Any]:
        """What the index holds: identity, counts, source, search structure."""
        from mcja.index.build import shard_info

        return {"index": str(self.folder), **self.store.counts(), "identity": self.identity,
                "source": self.store.get("source"), "kind": self.store.get("kind"),
                "structure": self.store.get("structure"), "feature_rows": self.feats.rows,
                "shards": shard_info(self.folder)}
