"""Vectorized VI-ReID metrics (CMC over unique ids, mAP, mINP) from a distance matrix, no loop over queries.

Ranking is by ascending distance; equal distances keep gallery order (what a stable sort gives).
Exclusion rules: "camera" drops gallery items from the query's camera (SYSU-MM01), "id_camera" only those
with the query's id and camera (LLCM), "none" keeps everything (RegDB).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from mcja.evaluation._arrays import as_views, check_distances, labels, to_numpy

EXCLUDE_RULES = ("camera", "id_camera", "none")
CMC_MIN_LENGTH = 20
_TIE_CHUNK = 2048
_ROW_CHUNK = 512  # query rows per task: a few tasks per block keep both cores busy, memory stays small


@dataclass
class QueryStats:
    """Per query: has a true match, AP, INP, and the 0-based rank of its id among unique gallery ids."""

    valid: np.ndarray
    ap: np.ndarray
    inp: np.ndarray
    rank: np.ndarray


@dataclass
class Block:
    """Distances of some queries to their eligible gallery columns, columns grouped by identity code."""

    dist: np.ndarray  # [n, m] float32
    qcode: np.ndarray  # [n]
    gcode: np.ndarray  # [m], non-decreasing
    order: np.ndarray  # [m] original gallery index of each column: decides ties
    starts: np.ndarray  # [num_codes + 1] column range of each code


def pairwise_dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x @ y.T for float32 [N, D] and [M, D] on one device; on CPU through numpy's BLAS.

    On this project's (AMD, AVX2) machines numpy's OpenBLAS sgemm runs 1.3-1.6x faster than torch's MKL one
    (both single-threaded and on 2 cores), and these products are most of the evaluation's arithmetic.
    """
    if x.device.type != "cpu":
        return torch.mm(x, y.t())
    return torch.from_numpy(np.matmul(x.numpy(), y.numpy().T))


def cosine_distance(query_feats: Any, gallery_feats: Any) -> torch.Tensor:
    """Negative cosine similarity [Nq, Ng] of view 0 of L2-normalised features, on the features' device."""
    return view0_cosine_distance(as_views(query_feats, "query"), as_views(gallery_feats, "gallery"))


def view0_cosine_distance(query_views: torch.Tensor, gallery_views: torch.Tensor) -> torch.Tensor:
    """cosine_distance of features already converted by as_views ([V, N, D], checked finite)."""
    q = F.normalize(query_views[0], dim=1)
    g = F.normalize(gallery_views[0].to(q.device), dim=1)
    # (-q) @ g.T is bit-identical to -(q @ g.T) and saves a pass over the matrix
    return pairwise_dot(-q, g)


def _segment_min(b: Block, num_codes: int) -> np.ndarray:
    """Per row and identity code, the smallest distance among that code's columns (inf if none) [n, U]."""
    present = np.flatnonzero(b.starts[1:] > b.starts[:-1])
    out = np.full((b.dist.shape[0], num_codes), np.inf, dtype=np.float32)
    if len(present):
        out[:, present] = np.minimum.reduceat(b.dist, b.starts[present], axis=1)
    return out


def _chunks(n: int) -> range:
    """Chunk starts for the rare exact-tie passes: bounded memory even if every distance ties."""
    return range(0, n, _TIE_CHUNK)


def _tie_count(b: Block, rows: np.ndarray, value: np.ndarray, before: np.ndarray) -> np.ndarray:
    """For each (row, value, gallery index) triple: columns holding exactly `value` at a lower gallery index."""
    out = np.zeros(len(rows), dtype=np.int64)
    for s in _chunks(len(rows)):
        r, v, o = rows[s : s + _TIE_CHUNK], value[s : s + _TIE_CHUNK], before[s : s + _TIE_CHUNK]
        out[s : s + _TIE_CHUNK] = ((b.dist[r] == v[:, None]) & (b.order[None, :] < o[:, None])).sum(1)
    return out


def _row_searchsorted(srt: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """How many entries of the sorted row srt[i] are below each vals[i, k] (a branch-free binary search in numpy,
    which releases the GIL, unlike a loop over rows)."""
    n, m = srt.shape
    flat, base = srt.ravel(), np.arange(n)[:, None] * m - 1
    pos = np.zeros(vals.shape, dtype=np.int64)
    step = 1 << (m.bit_length() - 1) if m else 0
    while step:  # pos grows by step whenever the (pos + step)-th smallest entry is still below the value
        cand = pos + step
        pos = np.where((cand <= m) & (flat[base + np.minimum(cand, m)] < vals), cand, pos)
        step >>= 1
    return pos


def _match_positions(b: Block, vals: np.ndarray, cols: np.ndarray, live: np.ndarray) -> np.ndarray:
    """0-based rank of each true match in its row's stable ascending order [n, K]; padding gets m."""
    n, m = b.dist.shape
    srt = np.sort(b.dist, axis=1)  # numpy's SIMD sort
    left = _row_searchsorted(srt, vals)
    nxt = np.take_along_axis(srt, np.minimum(left + 1, m - 1), axis=1)
    tied = live & (left + 1 < m) & (nxt == vals)  # another column holds the same distance
    if tied.any():
        r, j = np.nonzero(tied)
        left[r, j] += _tie_count(b, r, vals[r, j], b.order[cols[r, j]])
    return np.where(live, left, m)


def _unique_id_rank(b: Block, num_codes: int, first: np.ndarray, first_order: np.ndarray) -> np.ndarray:
    """Per row, how many other ids appear (first occurrence) before the first true match."""
    best = _segment_min(b, num_codes)
    rank = (best < first[:, None]).sum(1)
    tied = (best == first[:, None]) & (np.arange(num_codes)[None, :] != b.qcode[:, None])
    tie_rows = np.flatnonzero(tied.any(1))
    for s in _chunks(len(tie_rows)):  # an id tied with the first match precedes it when listed earlier
        r = tie_rows[s : s + _TIE_CHUNK]
        early = (b.dist[r] == first[r, None]) & (b.order[None, :] < first_order[r, None])
        hits = np.zeros((len(r), num_codes), dtype=bool)
        rr, cc = np.nonzero(early)
        hits[rr, b.gcode[cc]] = True
        rank[r] += (hits & tied[r]).sum(1)
    return rank


def _match_table(b: Block, drop_cams: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, ...]:
    """Columns [n, K] of each row's true matches, their distances (inf where not live) and the live mask."""
    lo, hi = b.starts[b.qcode], b.starts[b.qcode + 1]
    slot = np.arange(max(int((hi - lo).max(initial=0)), 1))
    live = slot[None, :] < (hi - lo)[:, None]
    cols = np.minimum(lo[:, None] + slot[None, :], max(b.dist.shape[1] - 1, 0))
    if drop_cams is not None:  # id+camera rule: a same-camera true match leaves the list altogether
        qcam, gcam = drop_cams
        excluded = live & (gcam[cols] == qcam[:, None])
        live &= ~excluded
        r, j = np.nonzero(excluded)
        if len(r):  # moved past every eligible item, in a copy: the caller's matrix stays as it was
            b.dist = b.dist.copy()
            b.dist[r, cols[r, j]] = np.inf
    if b.dist.shape[1] == 0:
        return cols, np.full(live.shape, np.inf, dtype=np.float32), live
    return cols, np.where(live, np.take_along_axis(b.dist, cols, axis=1), np.float32(np.inf)), live


def block_stats(b: Block, num_codes: int, drop_cams: tuple[np.ndarray, np.ndarray] | None = None) -> tuple:
    """AP, INP, unique-id rank and true-match count of each row of a block."""
    cols, vals, live = _match_table(b, drop_cams)
    pos = _match_positions(b, vals, cols, live)
    first = pos.argmin(1)[:, None]
    ranks = np.sort(pos, axis=1) + 1.0  # 1-based ranks of the matches, best first
    counts = live.sum(1)
    hits = np.arange(1, ranks.shape[1] + 1, dtype=np.float64)
    ap = np.where(hits[None, :] <= counts[:, None], hits / ranks, 0.0).sum(1) / np.maximum(counts, 1)
    inp = counts / np.take_along_axis(ranks, np.maximum(counts - 1, 0)[:, None], axis=1)[:, 0]
    # everything ranked before the first true match has another id: with at most one such item the id rank
    # is that count, so only the other rows need the per-identity minima
    rank = ranks[:, 0].astype(np.int64) - 1  # rows without a true match get m: left out later
    hard = np.flatnonzero((rank > 1) & (counts > 0))
    if len(hard):
        sub = Block(b.dist[hard], b.qcode[hard], b.gcode, b.order, b.starts)
        first_val = np.take_along_axis(vals[hard], first[hard], axis=1)[:, 0]
        first_order = b.order[np.take_along_axis(cols[hard], first[hard], axis=1)[:, 0]]
        rank[hard] = _unique_id_rank(sub, num_codes, first_val, first_order)
    return ap, inp, rank, counts


def make_block(rows_dist: np.ndarray, cols: np.ndarray, qcode: np.ndarray, gcode: np.ndarray, order: np.ndarray, n_codes: int) -> Block:
    """A block from the distance rows of some queries and the eligible columns `cols` (sorted by gcode).

    `gcode` and `order` (original gallery index, for ties) describe every column of `rows_dist`.
    """
    sub = rows_dist if len(cols) == rows_dist.shape[1] and np.all(cols == np.arange(len(cols))) else np.take(rows_dist, cols, axis=1)
    starts = np.searchsorted(gcode[cols], np.arange(n_codes + 1))
    return Block(np.ascontiguousarray(sub, dtype=np.float32), qcode, gcode[cols], order[cols], starts)


def query_groups(qcams: np.ndarray, exclude: str) -> list[tuple[int | None, np.ndarray]]:
    """(camera, query rows) pairs that share one set of eligible gallery columns under the exclusion rule."""
    if exclude not in EXCLUDE_RULES:
        raise ValueError(f"exclude must be one of {EXCLUDE_RULES}, got {exclude!r}")
    if exclude != "camera":
        return [(None, np.arange(len(qcams)))]
    return [(int(c), np.flatnonzero(qcams == c)) for c in np.unique(qcams)]


def parallel_map(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """[fn(x) for x in items] on up to torch.get_num_threads() threads (numpy's sorts and gathers release the GIL)."""
    items = list(items)
    workers = min(torch.get_num_threads(), len(items))
    if workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def group_stats(dist: np.ndarray, rows: np.ndarray, cols: np.ndarray, qcode: np.ndarray, gcode: np.ndarray,
                order: np.ndarray, n_codes: int,
                drop_cams: tuple[np.ndarray, np.ndarray] | None = None) -> list[np.ndarray]:
    """AP, INP, unique-id rank and true-match count of the queries `rows` (ascending, codes `qcode`) of `dist`
    against its columns `cols` (sorted by gcode), in row chunks on a few threads.

    `gcode` and `order` describe every column of `dist`; `drop_cams`: the rows' and the cols' cameras (id+camera rule).
    """
    def chunk(s: int) -> tuple:
        r, part = rows[s : s + _ROW_CHUNK], slice(s, s + _ROW_CHUNK)
        sub = dist[r[0] : r[-1] + 1] if r[-1] - r[0] + 1 == len(r) else dist[r]  # contiguous rows: a view
        drop = None if drop_cams is None else (drop_cams[0][part], drop_cams[1])
        return block_stats(make_block(sub, cols, qcode[part], gcode, order, n_codes), n_codes, drop)

    parts = parallel_map(chunk, range(0, len(rows), _ROW_CHUNK))
    if not parts:
        return [np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)]
    return [np.concatenate(p) for p in zip(*parts)]


def query_stats(
    dist: Any, query_ids: Any, query_cams: Any, gallery_ids: Any, gallery_cams: Any, exclude: str = "camera"
) -> QueryStats:
    """Per-query AP, INP and unique-id rank from a distance matrix [Nq, Ng] (lower = closer), left unmodified."""
    dist = np.asarray(to_numpy(dist), dtype=np.float32)
    check_distances(dist)
    nq, ng = dist.shape
    qids, gids = labels(query_ids, "query_ids", nq), labels(gallery_ids, "gallery_ids", ng)
    qcams, gcams = labels(query_cams, "query_cams", nq), labels(gallery_cams, "gallery_cams", ng)
    uniq, inv = np.unique(np.concatenate([qids, gids]), return_inverse=True)
    qcode, gcode = inv[:nq], inv[nq:]
    by_code = np.argsort(gcode, kind="stable")
    out = [np.zeros(nq), np.zeros(nq), np.zeros(nq, dtype=np.int64), np.zeros(nq, dtype=np.int64)]
    for cam, rows in query_groups(qcams, exclude):
        cols = by_code if cam is None else by_code[gcams[by_code] != cam]
        drop = (qcams[rows], gcams[cols]) if exclude == "id_camera" else None
        for arr, val in zip(out, group_stats(dist, rows, cols, qcode[rows], gcode, np.arange(ng), len(uniq), drop)):
            arr[rows] = val
    ap, inp, rank, counts = out
    return QueryStats(valid=counts > 0, ap=ap, inp=inp, rank=rank)


def summarize(stats: QueryStats, num_gallery_ids: int) -> dict[str, Any]:
    """Percent r1/r5/r10/r20, mAP, mINP and the CMC curve (percent, cmc[k-1] = rank-k), over queries with a true match."""
    n = int(stats.valid.sum())
    if n == 0:
        raise ValueError("no query has a true match in the gallery: the metrics are undefined")
    length = max(num_gallery_ids, 1)
    cmc = np.cumsum(np.bincount(stats.rank[stats.valid], minlength=length)[:length]) / n * 100
    if len(cmc) < CMC_MIN_LENGTH:  # fewer ids than rank-20: the curve stays flat after the last id
        cmc = np.concatenate([cmc, np.full(CMC_MIN_LENGTH - len(cmc), cmc[-1])])
    return {
        "r1": float(cmc[0]),
        "r5": float(cmc[4]),
        "r10": float(cmc[9]),
        "r20": float(cmc[19]),
        "mAP": float(stats.ap[stats.valid].mean() * 100),
        "mINP": float(stats.inp[stats.valid].mean() * 100),
        "cmc": cmc,
    }


def rank_metrics(
    dist: Any, query_ids: Any, query_cams: Any, gallery_ids: Any, gallery_cams: Any, exclude: str = "camera"
) -> dict[str, Any]:
    """Metrics dict (r1, r5, r10, r20, mAP, mINP; cmc: the whole curve; all percent) from distances [Nq, Ng]."""
    stats = query_stats(dist, query_ids, query_cams, gallery_ids, gallery_cams, exclude)
    return summarize(stats, len(np.unique(labels(gallery_ids, "gallery_ids", int(dist.shape[1])))))
