"""Searching an index: top-k by cosine (FAISS or exact), filters by modality / camera, MSER re-ranking over the
union of the queries' top candidates, and the ranked JSON + contact sheets that `mcja search` writes.

Re-ranking: each query's top RERANK_CANDIDATES (at least top-k) are gathered, and MSER (by default `RERANK`: RegDB's
preset, neighbours from all items, which suits any gallery; `rerank_params` picks others) runs on the queries + that
union, with the
gallery's MSER views when the index has them; its cost grows with queries x candidates, not with the archive.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from mcja.data.records import MODALITY_BY_CODE
from mcja.errors import ConfigError, DatasetError
from mcja.evaluation import MSER_PRESETS, MserParams, choose_mser, mser_rerank, refuse_unused_mser
from mcja.inference.sources import find_images, pid_from_path
from mcja.utils.io import atomic_write_json
from mcja.utils.names import printable
from mcja.visualize.pictures import save_ranked_list

if TYPE_CHECKING:
    from mcja.index.gallery import GalleryIndex

RERANK_CANDIDATES = 100
RERANK = MSER_PRESETS["regdb"]  # no query-side masking: an archive is not a benchmark's query set
RESULTS_NAME = "results.json"


def rerank_params(rerank: bool, preset: str | None = None, k1: int | None = None, k2: int | None = None,
                  lambda_value: float | None = None) -> MserParams | None:
    """None without `rerank`, else MSER's parameters: `preset` (None or 'auto': RERANK) with any of k1, k2, lambda
    over it. Parameters without `rerank` are refused: they would change nothing."""
    if not rerank:
        refuse_unused_mser("--rerank", preset, k1, k2, lambda_value)
        return None
    return choose_mser(preset, k1, k2, lambda_value, auto=RERANK)


def search_scope(index: "GalleryIndex", top_k: int, modality: str | int | None = None,
                 camera: int | Sequence[int] | None = None) -> tuple[np.ndarray | None, int, int]:
    """(ids the filters allow, None for all; how many images that is; top_k clamped to it): a search's memory is
    bounded by the index, never by the request."""
    if int(top_k) < 1:
        raise ConfigError(f"--top-k: expected a positive number, got {top_k}")
    allowed = index.allowed_ids(modality, camera)
    n = len(index.id_rows(fresh=True)[0]) if allowed is None else len(allowed)
    if n == 0:
        counts = index.store.counts()
        raise DatasetError(f"{index.folder}: the index holds no searchable images ({counts['pending']} pending, "
                           f"{counts['unreadable']} unreadable)")
    return allowed, n, min(int(top_k), n)


def search_features(index: "GalleryIndex", q: torch.Tensor, top_k: int, modality: str | int | None = None,
                    camera: int | Sequence[int] | None = None, rerank: bool | MserParams = False,
                    scope: tuple[np.ndarray | None, int, int] | None = None) -> list[list[dict[str, Any]]]:
    """Ranked hits per query feature [Q, D]: dicts with id, path, score (cosine, or 1 - MSER distance with a
    `cosine` beside it), pid, camera, modality; at most as many as the filters allow (`scope`: search_scope's).
    `rerank`: True (RERANK's parameters) or MserParams."""
    allowed, n, k = scope or search_scope(index, top_k, modality, camera)
    fetch = min(max(k, RERANK_CANDIDATES), n) if rerank else k
    scores, found = index.run_search(q.numpy(), fetch, allowed)
    if rerank:
        scores, found, cosine = _rerank(index, q, found, k, _params(rerank))
    else:
        cosine = None
    meta = index.store.describe(np.unique(found[found >= 0]).tolist())
    out = []
    for i in range(len(q)):
        hits = []
        for j in range(k):
            if found[i, j] < 0:
                break
            if int(found[i, j]) not in meta:
                continue  # removed by a writer since this reader's view was loaded (docs/index-format.md)
            hit = {"id": int(found[i, j]), **meta[int(found[i, j])], "score": float(scores[i, j])}
            if cosine is not None:
                hit["cosine"] = float(cosine[i, j])
            hits.append(hit)
        out.append(hits)
    return out


def _params(rerank: bool | MserParams) -> MserParams:
    """The MSER parameters a truthy `rerank` stands for."""
    return rerank if isinstance(rerank, MserParams) else RERANK


def _rerank(index: "GalleryIndex", q: torch.Tensor, found: np.ndarray, k: int, params: MserParams = RERANK
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(1 - MSER distance, ids, cosine) [Q, k] over the union of the queries' candidates."""
    union = np.unique(found[found >= 0])
    if len(union) == 0:
        return np.full((len(q), k), -np.inf), np.full((len(q), k), -1), np.full((len(q), k), -np.inf)
    ids, rows = index.id_rows()
    gallery = torch.from_numpy(index.feats.take(rows[np.searchsorted(ids, union)], view=None)).transpose(0, 1)
    dist = mser_rerank(q[None], gallery, **params.as_kwargs()).numpy()
    cosine = (q @ gallery[0].T).numpy()
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    pad = max(0, k - order.shape[1])
    pick = lambda m, fill: np.pad(np.take_along_axis(m, order, 1), ((0, 0), (0, pad)), constant_values=fill)  # noqa
    return pick(1.0 - dist, -np.inf), pick(np.broadcast_to(union, dist.shape), -1), pick(cosine, -np.inf)


def index_root(index: "GalleryIndex") -> str | None:
    """The folder an index's paths are shown relative to: its image folder, or for a list its folder or the
    images' common parent (recorded by build/update; None for an index filled through the Python API)."""
    source = index.store.get("source") or {}
    return index.store.get("root") or source.get("images") or (str(Path(source["list"]).parent)
                                                                if source.get("list") else None)


def shown_path(path: str, root: str | None) -> str:
    """A result's path for a person: relative to `root` when it lies below it, non-UTF-8 bytes as \\xNN."""
    if root is not None and Path(path).is_relative_to(root):
        path = os.path.relpath(path, root)
    return printable(path)


def score_name(rerank: bool | MserParams) -> str:
    """What the `score` of a result means (with the MSER parameters used)."""
    if not rerank:
        return "cosine similarity"
    return f"1 - MSER re-ranked distance ({_params(rerank).describe()})"


def expand_queries(queries: Sequence[str | os.PathLike], exclude: Path | None = None) -> list[str]:
    """Query image paths, a folder given as a query standing for the images below it."""
    if not queries:
        raise ConfigError("--query: give at least one query image")
    paths: list[str] = []
    for query in queries:
        paths.extend(find_images(query, exclude=exclude) if Path(query).is_dir() else [str(query)])
    return paths


def ranked_results(hits: list[dict[str, Any]], pid: int | None) -> tuple[list[dict[str, Any]], list[bool] | None]:
    """One query's hits as ranked JSON items (rank, path, score; cosine and labels when known; correctness when the
    query's and every hit's pid are known), with the correctness list (None when unknown)."""
    known = pid is not None and all(h.get("pid") is not None for h in hits)
    correct = [h["pid"] == pid for h in hits] if known else None
    results = []
    for rank, hit in enumerate(hits, start=1):
        item: dict[str, Any] = {"rank": rank, "path": hit["path"], "score": round(float(hit["score"]), 6)}
        if "cosine" in hit:
            item["cosine"] = round(float(hit["cosine"]), 6)
        for key in ("pid", "camera", "modality"):
            if hit.get(key) is not None:
                item[key] = MODALITY_BY_CODE[hit[key]] if key == "modality" else hit[key]
        if correct is not None:
            item["correct"] = bool(correct[rank - 1])
        results.append(item)
    return results, correct


def query_entry(index: int, path: str, hits: list[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    """One query's ranked results (rank, path, score; cosine, ids and correctness when known), after drawing its
    contact sheet."""
    pid = pid_from_path(path)
    results, correct = ranked_results(hits, pid)
    picture = out_dir / f"query_{index + 1:03d}_{Path(path).stem}.png"
    save_ranked_list(picture, path, [h["path"] for h in hits], scores=[h["score"] for h in hits], correct=correct)
    return {"query": str(path), "pid": pid, "picture": str(picture), "results": results}


def search_to_folder(index: "GalleryIndex", queries: Sequence[str | os.PathLike], out: str | os.PathLike,
                     top_k: int = 10, modality: str | None = None, camera: Sequence[int] | None = None,
                     rerank: bool | MserParams = False, skip_bad: bool = False, progress: bool = True,
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Search `queries` (images or folders) in an index; writes out/results.json and one contact sheet per query."""
    start = time.perf_counter()
    out_dir = Path(out).expanduser().absolute()
    paths = expand_queries(queries, out_dir)
    embedded = index.embed(paths, skip_bad=skip_bad, progress=progress)
    return write_results(index, paths, embedded, out_dir, top_k, modality, camera, rerank, extra, start)


def write_results(index: "GalleryIndex", paths: list[str], embedded: tuple[torch.Tensor, list[int], list[str]],
                  out_dir: Path, top_k: int = 10, modality: str | None = None, camera: Sequence[int] | None = None,
                  rerank: bool | MserParams = False, extra: dict[str, Any] | None = None, start: float | None = None
                  ) -> dict[str, Any]:
    """Rank the embedded queries (features, kept indices, skipped reasons) and write results.json + sheets."""
    feats, kept, skipped = embedded
    scope = search_scope(index, top_k, modality, camera)
    hits = search_features(index, feats, top_k, modality, camera, rerank, scope)
    entries = [query_entry(i, paths[j], h, out_dir) for i, (j, h) in enumerate(zip(kept, hits))]
    extra = dict(extra or {})
    report = {**extra, "index": str(index.folder), "root": index_root(index), "gallery_images": scope[1],
              "index_images": len(index), "top_k": scope[2], "top_k_requested": int(top_k),
              "filters": {"modality": modality, "camera": list(camera) if camera else None},
              "score": score_name(rerank), "rerank": bool(rerank), "queries": entries,
              "skipped": extra.get("skipped", []) + skipped,
              "seconds": round(time.perf_counter() - (start or time.perf_counter()), 3)}
    atomic_write_json(out_dir / RESULTS_NAME, report)
    return report
