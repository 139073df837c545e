"""Building and updating an index: scan the source, extract pending images in committed chunks, refresh FAISS.

Resumable by construction: a scan first records every new or changed image as pending (one transaction),
then each chunk's features are appended to the feature file and their rows committed (one transaction per
chunk), so a killed build continues with the pending images only. The FAISS index is written atomically at
the end. Under torchrun every rank extracts a contiguous block of the pending images into its own shard
(`shards/rank-R/`, itself resumable) and rank 0 appends the shards in rank order, i.e. in id order: the
same rows as a one-process build.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from mcja.errors import DatasetError
from mcja.index.faiss_backend import Structure, build_structure, faiss_or_none, load_structure, resolve_kind, save_structure
from mcja.index.features import DTYPES, FeatureFile, file_name
from mcja.index.store import DB_NAME, ImageRow, Store
from mcja.index.writer import LOCK_NAME
from mcja.inference.extractor import FeatureExtractor
from mcja.utils.io import atomic_write_json

STRUCTURE_NAME = "faiss.index"
SHARDS = "shards"
RETRAIN_GROWTH = 2.0  # an ivf index is retrained (and re-tuned) once the archive doubled since training

Commit = Callable[[list[tuple[int, int]], list[tuple[int, str]], int], None]


def diff_scan(store: Store, scanned: Sequence[ImageRow], drop_missing: bool = True
              ) -> tuple[list[ImageRow], list[tuple[int, ImageRow]], list[int]]:
    """(new images, (id, changed image) by size or mtime, ids of images no longer in the source)."""
    known = store.scanned()
    new, changed = [], []
    for row in scanned:
        old = known.get(row.path)
        if old is None:
            new.append(row)
        elif (old[1], old[2]) != (row.size, row.mtime_ns):
            changed.append((old[0], row))
    present = {row.path for row in scanned}
    gone = [i for path, (i, _, _) in known.items() if path not in present] if drop_missing else []
    return new, changed, sorted(gone)


def relabelled(store: Store, scanned: Sequence[ImageRow]) -> list[tuple[int, ImageRow]]:
    """(id, image) of known, unchanged images whose labels the scan reads otherwise (a source labelled by a
    newer rule or another --camera / --modality): their labels are updated without extracting them again."""
    known = store.labels()
    out = []
    for row in scanned:
        old = known.get(row.path)
        if old is not None and old[1:3] == (row.size, row.mtime_ns) and old[3] != (row.pid, row.camera, row.modality):
            out.append((old[0], row))
    return out


def extract_pending(extractor: FeatureExtractor, feats: FeatureFile, pending: Sequence[tuple[int, str]],
                    commit: Commit, chunk: int = 1024, skip_bad: bool = False, progress: bool = True,
                    desc: str = "index") -> int:
    """Extract `pending` (id, path) in chunks; each chunk's rows are appended, then `commit`ted. Returns the count."""
    views = feats.shape[0]
    bar = tqdm(total=len(pending), desc=desc, unit="img", disable=not progress or not pending)
    for start in range(0, len(pending), chunk):
        part = pending[start : start + chunk]
        try:
            result = extractor.extract([p for _, p in part], skip_bad=skip_bad, views=views)
        except DatasetError as err:
            if not skip_bad:
                raise
            commit([], [(i, str(err)) for i, _ in part], feats.rows)  # not one readable image in this chunk
            _advance(bar, len(part))
            continue
        got = result.features.numpy()
        got = got[:, None] if views == 1 else got.transpose(1, 0, 2)  # [n, views, dim]
        rows = feats.append(got)
        bad = sorted(set(range(len(part))) - set(result.kept))
        commit([(part[i][0], r) for i, r in zip(result.kept, rows)],
               [(part[i][0], msg) for i, msg in zip(bad, result.skipped)], feats.rows)
        _advance(bar, len(part))
    bar.close()
    return len(pending)


def _advance(bar: tqdm, n: int) -> None:
    """Count `n` more images on the bar; the finished bar is drawn by close() only (drawn here too, a log showed
    it twice)."""
    if bar.n + n < bar.total:
        bar.update(n)
    else:
        bar.n += n


def extract_sharded(extractor: FeatureExtractor, store: Store, feats: FeatureFile, rank: int, world: int,
                    barrier: Callable[[], None], chunk: int, skip_bad: bool, progress: bool) -> int:
    """This rank's block of the pending images into its shard; then rank 0 merges every shard. Returns the count."""
    pending = store.pending()
    lo, hi = rank * len(pending) // world, (rank + 1) * len(pending) // world
    shard = _Shard(feats.path.parent / SHARDS / f"rank-{rank}", feats)
    todo = [p for p in pending[lo:hi] if p[0] not in shard.done]
    extract_pending(extractor, shard.feats, todo, shard.commit, chunk, skip_bad, progress, desc=f"rank {rank}")
    barrier()
    if rank == 0:
        waiting = {i for i, _ in pending}
        for r in range(world):
            _merge(_Shard(feats.path.parent / SHARDS / f"rank-{r}", feats), store, feats, waiting, chunk)
        shutil.rmtree(feats.path.parent / SHARDS, ignore_errors=True)
    return len(todo)


class _Shard:
    """One rank's extracted features: a feature file and `done.json` (ids, rows, errors), rewritten per chunk."""

    def __init__(self, folder: Path, like: FeatureFile) -> None:
        self.folder, self.file = folder, folder / "done.json"
        state = json.loads(self.file.read_text()) if self.file.is_file() else {"rows": 0, "ids": [], "errors": []}
        folder.mkdir(parents=True, exist_ok=True)
        self.state = state
        self.feats = FeatureFile(folder, like.path.suffix[1:], like.shape[0], like.shape[1], state["rows"])
        self.done = set(state["ids"]) | {i for i, _ in state["errors"]}

    def commit(self, rows: list[tuple[int, int]], errors: list[tuple[int, str]], n_rows: int) -> None:
        """Record a chunk (after its features were appended), atomically."""
        assert all(r == len(self.state["ids"]) + k for k, (_, r) in enumerate(rows))  # shard rows are dense
        self.state["ids"] += [i for i, _ in rows]
        self.state["errors"] += [list(e) for e in errors]
        self.state["rows"] = n_rows
        atomic_write_json(self.file, self.state)


def _merge(shard: _Shard, store: Store, feats: FeatureFile, waiting: set[int], chunk: int) -> None:
    """Append a shard's rows that the index still waits for, chunk by chunk, each chunk committed."""
    ids = np.asarray(shard.state["ids"], dtype=np.int64)
    store.commit_rows([], [(int(i), e) for i, e in shard.state["errors"] if i in waiting], feats.rows)
    for start in range(0, len(ids), chunk):
        part = [(int(i), start + k) for k, i in enumerate(ids[start : start + chunk]) if int(i) in waiting]
        if not part:
            continue  # merged before a kill
        rows = feats.append(shard.feats.array()[[r for _, r in part]])
        store.commit_rows([(i, r) for (i, _), r in zip(part, rows)], [], feats.rows)


def refresh_structure(store: Store, feats: FeatureFile, folder: Path, rebuild: bool = False) -> Structure:
    """Bring the FAISS index up to date: incrementally (flat, ivf) or rebuilt (`rebuild`: always); written
    atomically, then recorded with its fingerprint and the next generation (docs/index-format.md)."""
    live = store.live()
    ids = np.array([i for i, _ in live], dtype=np.int64)
    rows = np.array([r for _, r in live], dtype=np.int64)
    kind = resolve_kind(store.get("kind", "auto"), len(ids))
    stored = store.get("structure") or {}
    generation = int(stored.get("generation", 0)) + 1
    path = folder / STRUCTURE_NAME
    incremental = (not rebuild and faiss_or_none() is not None and path.is_file() and stored.get("kind") == kind
                   and kind != "hnsw"
                   and (kind == "flat" or len(ids) <= RETRAIN_GROWTH * max(1, stored.get("trained_on", 0))))
    structure = None
    if incremental:
        try:
            structure = load_structure(path, kind, stored.get("params", {}), stored.get("file"))
        except DatasetError:
            structure = None  # damaged, or not the recorded file (an interrupted writer's): rebuilt below
    if structure is not None:
        todo = store.unindexed()
        todo_ids = np.array([i for i, _ in todo], dtype=np.int64)
        drop = np.union1d(np.asarray(store.get("to_remove", []), dtype=np.int64), todo_ids)
        if len(drop):
            structure.index.remove_ids(faiss_or_none().IDSelectorBatch(drop))  # changed ids re-enter below
        if len(todo):
            structure.index.add_with_ids(feats.take(np.array([r for _, r in todo])), todo_ids)
        file = save_structure(structure, path)
        store.mark_indexed(todo_ids.tolist(), {**stored, "images": len(ids), "generation": generation, "file": file})
        return structure
    structure = build_structure(feats, ids, rows, kind)
    file = save_structure(structure, path)
    store.mark_indexed(ids.tolist(), {"kind": structure.kind, "params": structure.params, "trained_on": len(ids),
                                      "images": len(ids), "faiss": structure.index is not None,
                                      "generation": generation, "file": file}, only=True)
    return structure


def remove_index_files(folder: Path) -> None:
    """Delete every file an index keeps in `folder` (a build that indexed nothing leaves nothing); under the lock."""
    names = [DB_NAME + tail for tail in ("", "-wal", "-shm", "-journal")] + [file_name(d) for d in DTYPES]
    for name in [*names, STRUCTURE_NAME, LOCK_NAME]:
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / SHARDS, ignore_errors=True)


def stat_rows(paths: Sequence[str], labels: Callable[[str], tuple[int | None, int | None, int | None]]
              ) -> list[ImageRow]:
    """ImageRows (size, mtime, labels) of existing files; a missing file is a DatasetError naming it."""
    rows = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            raise DatasetError(f"{path}: image file not found") from None
        rows.append(ImageRow(str(path), st.st_size, st.st_mtime_ns, *labels(str(path))))
    return rows


def shard_info(folder: Path) -> dict[str, Any]:
    """Shards left by an interrupted sharded build (rank -> images done), for `info`."""
    out = {}
    for f in sorted((folder / SHARDS).glob("rank-*/done.json")):
        out[f.parent.name] = len(json.loads(f.read_text())["ids"])
    return out
