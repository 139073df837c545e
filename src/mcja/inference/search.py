"""`mcja search`: rank a gallery folder for query images; ranked JSON, a contact sheet per query, cached gallery.

Score: cosine similarity of the L2-normalised features. With `rerank`, the gallery is embedded in the four
MSER spectral views and re-ranked with k-reciprocal neighbours over queries + gallery (RegDB's settings:
k1 = 50, k2 = 10, lambda = 0.2, neighbours from all items, no masking; with fewer items than that, the
neighbour lists simply hold every item, as in the reference), averaged over gallery views; the score is
then 1 - re-ranked distance.
Gallery features are cached in `<out>/gallery_features.npz`, keyed by the checkpoint (path, size, mtime),
the input size and the gallery's file list with sizes and mtimes; reused while all of these are unchanged.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mcja.data.cache import cache_key
from mcja.errors import ConfigError
from mcja.evaluation import REGDB_MSER, mser_rerank, save_ranked_list
from mcja.inference.extract import atomic_savez
from mcja.inference.extractor import MSER_VIEWS, Extraction, FeatureExtractor
from mcja.inference.sources import ImageSet, find_images, folder_images, pid_from_path
from mcja.utils.io import atomic_write_json, ensure_writable_dir

CACHE_NAME = "gallery_features.npz"
RESULTS_NAME = "results.json"
CACHE_FORMAT = 1


def search_gallery(
    checkpoint: str | os.PathLike,
    queries: Sequence[str | os.PathLike],
    gallery: str | os.PathLike,
    out: str | os.PathLike,
    top_k: int = 10,
    rerank: bool = False,
    batch_size: int = 64,
    image_size: Sequence[int] | None = None,
    device: str | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    amp: str = "auto",
) -> dict[str, Any]:
    """Rank the images below `gallery` for each query image (or folder of them); writes `out/results.json` and
    one contact-sheet PNG per query, and returns what the JSON holds (`amp`: as in FeatureExtractor)."""
    if int(top_k) < 1:
        raise ConfigError(f"--top-k: expected a positive number, got {top_k}")
    start = time.perf_counter()
    out_dir = ensure_writable_dir(out, "--out")
    gallery_set = folder_images(gallery, exclude=out_dir)  # contact sheets written into the gallery stay out of it
    query_paths = _expand_queries(queries, out_dir)
    extractor = FeatureExtractor(checkpoint, device=device, batch_size=batch_size, image_size=image_size, amp=amp)
    views = MSER_VIEWS if rerank else 1
    found = extractor.extract(query_paths, skip_bad=skip_bad, progress=progress, desc="queries")  # bad queries fail first
    gal, cache_note = gallery_features(extractor, gallery_set.paths, out_dir / CACHE_NAME, views, skip_bad, progress)
    kept_gallery = gallery_set.subset(gal.kept)
    kept_queries = [query_paths[i] for i in found.kept]
    scores, cosine = _scores(found.features, gal.features, rerank)
    order = np.argsort(-scores, axis=1, kind="stable")[:, : int(top_k)]
    entries = [_query_entry(i, path, order[i], scores[i], cosine[i] if rerank else None, kept_gallery, out_dir)
               for i, path in enumerate(kept_queries)]
    report = {
        "checkpoint": str(checkpoint),
        "gallery": str(Path(gallery).expanduser().absolute()),
        "gallery_images": len(kept_gallery.paths),
        "gallery_features": cache_note,
        "top_k": int(top_k),
        "score": _score_name(rerank),
        "rerank": bool(rerank),
        "queries": entries,
        "skipped": gal.skipped + found.skipped,
        "seconds": round(time.perf_counter() - start, 3),
    }
    atomic_write_json(out_dir / RESULTS_NAME, report)
    return report


def gallery_features(extractor: FeatureExtractor, paths: list[str], cache_file: Path, views: int, skip_bad: bool,
                     progress: bool = True) -> tuple[Extraction, str]:
    """Features [V, N, D] of the gallery, from `cache_file` when its key matches, else computed and cached;
    with a note saying which ("reused cache" / "computed N")."""
    key = _cache_key(extractor, paths)
    cached = _read_cache(cache_file, key, views, skip_bad)
    if cached is not None:
        return cached, f"reused cache ({len(cached.kept)} images)"
    result = extractor.extract(paths, skip_bad=skip_bad, progress=progress, desc="gallery", views=views)
    feats = result.features if views > 1 else result.features[None]
    atomic_savez(cache_file, {
        "key": np.array(key), "features": feats.numpy(), "kept": np.array(result.kept, dtype=np.int64),
        "skipped": np.array(result.skipped, dtype=str), "paths": np.array([paths[i] for i in result.kept], dtype=str),
    })
    return Extraction(feats, result.kept, result.skipped), f"computed {len(result.kept)}"


def _cache_key(extractor: FeatureExtractor, paths: list[str]) -> str:
    """What the cached features depend on: checkpoint identity, preprocessing, numerics and the files."""
    ckpt = extractor.checkpoint.absolute() if extractor.checkpoint else None
    stat = ckpt.stat() if ckpt else None
    tag = json.dumps({
        "format": CACHE_FORMAT,
        "checkpoint": [str(ckpt), stat.st_size, stat.st_mtime_ns] if stat else repr(extractor.model),
        "normalize": extractor.normalize,
        "numerics": [extractor.runtime.device.type, str(extractor.runtime.amp_dtype)],
    })
    return cache_key(paths, extractor.image_size, tag)


def _read_cache(cache_file: Path, key: str, views: int, skip_bad: bool) -> Extraction | None:
    """The cached gallery features when the key matches and they have the views needed, else None."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file) as data:
            if str(data["key"]) != key or data["features"].shape[0] < views:
                return None
            if not np.isfinite(data["features"]).all():
                return None  # written by an older version that kept NaN features: recompute and check them
            skipped = [str(s) for s in data["skipped"]]
            if skipped and not skip_bad:
                return None  # recompute, so the unreadable file is reported as an error this time
            return Extraction(torch.from_numpy(data["features"][:views].copy()), data["kept"].tolist(), skipped)
    except (OSError, ValueError, KeyError):
        return None  # an unreadable or foreign cache file is simply rebuilt


def _expand_queries(queries: Sequence[str | os.PathLike], out_dir: Path) -> list[str]:
    """Query image paths, a folder given as a query standing for the images below it."""
    if not queries:
        raise ConfigError("--query: give at least one query image")
    paths: list[str] = []
    for query in queries:
        paths.extend(find_images(query, exclude=out_dir) if Path(query).is_dir() else [str(query)])
    return paths


def _scores(queries: torch.Tensor, gallery: torch.Tensor, rerank: bool) -> tuple[np.ndarray, np.ndarray]:
    """(ranking scores, cosine similarities) [Nq, Ng] of L2-normalised query [Nq, D] / gallery [V, Ng, D] features."""
    cosine = (queries @ gallery[0].T).numpy()
    if not rerank:
        return cosine, cosine
    dist = mser_rerank(queries[None], gallery, **REGDB_MSER)
    return 1.0 - dist.numpy(), cosine


def _score_name(rerank: bool) -> str:
    """What the `score` of a result means."""
    if not rerank:
        return "cosine similarity"
    return f"1 - MSER re-ranked distance (k1={REGDB_MSER['k1']}, k2={REGDB_MSER['k2']}, lambda={REGDB_MSER['lambda_value']})"


def _query_entry(index: int, path: str, top: np.ndarray, scores: np.ndarray, cosine: np.ndarray | None,
                 gallery: ImageSet, out_dir: Path) -> dict[str, Any]:
    """One query's ranked results (rank, path, score; ids and correctness when known), after drawing its PNG."""
    pid = pid_from_path(path)
    correct = [gallery.pids[j] == pid for j in top] if pid is not None and gallery.pids is not None else None
    picture = out_dir / f"query_{index + 1:03d}_{Path(path).stem}.png"
    save_ranked_list(picture, path, [gallery.paths[j] for j in top], scores=scores[top].tolist(), correct=correct)
    results = []
    for rank, j in enumerate(top.tolist(), start=1):
        item: dict[str, Any] = {"rank": rank, "path": gallery.paths[j], "score": round(float(scores[j]), 6)}
        if cosine is not None:
            item["cosine"] = round(float(cosine[j]), 6)
        if gallery.pids is not None:
            item["pid"] = gallery.pids[j]
        if correct is not None:
            item["correct"] = bool(correct[rank - 1])
        results.append(item)
    return {"query": str(path), "pid": pid, "picture": str(picture), "results": results}
