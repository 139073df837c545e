"""Vectorized VI-ReID metrics (CMC over unique ids, mAP, mINP) from a distance matrix, no loop over queries.

Ranking is by ascending distance; equal distances keep gallery order (what a stable sort gives).
Exclusion rules: "camera" drops gallery items from the query's camera (SYSU-MM01), "id_camera" only those
with the query's id and camera (LLCM), "none" keeps everything (RegDB). `subset_stats` gives the same per-query
figures for many galleries that are subsets of one column set (SYSU-MM01's trials) from one sort per query.
"""

from __future__ import annotations

import sys
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


# Many galleries (trials) of one query set at once. Each gallery is a subset ("lane") of one column set; every
# lane's ranking is the same stable order restricted to its columns, so one sort per query row serves all lanes: a
# true match's rank in a lane is the number of that lane's columns sorted before it. Those counts are summed with
# one byte per lane packed eight to a 64-bit word (segments of <= 255 columns cannot overflow a byte).
_LANES = 64  # lanes per pass: one bit each in a uint64 mask
_LOW = 0 if sys.byteorder == "little" else 1  # which uint32 half of a uint64 holds its low bits
_SEGMENT = 255  # longest run summed in one byte
_SUBSET_ROWS = 128  # query rows per task: the sort keys and gathered lanes of a task stay in the caches
_WIDTH_GROUP = 16  # rows per rectangle of sorted columns, grouped by how far into their order they are needed


def _sort_keys(dist: np.ndarray, order: np.ndarray) -> np.ndarray:
    """uint64 keys [n, m] whose ascending order is the stable ascending order of `dist` with ties broken by `order`:
    the float's bits made monotonic in the high half (-0.0 counted as 0.0), `order` (< 2**32) in the low half."""
    bits = (dist.astype(np.float32, copy=False) + np.float32(0.0)).view(np.uint32)
    keys = np.empty(dist.shape, dtype=np.uint64)
    halves = keys.view(np.uint32).reshape(*dist.shape, 2)
    # sign bit set: flip every bit (more negative, smaller); else set the sign bit (above every negative)
    np.bitwise_xor(bits, (bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000),
                   out=halves[..., 1 - _LOW])
    halves[..., _LOW] = order
    return keys


def _low_half(keys: np.ndarray) -> np.ndarray:
    """The `order` values stored in the low halves of sort keys, as indices."""
    return keys.view(np.uint32).reshape(*keys.shape, 2)[..., _LOW].astype(np.intp)


@dataclass
class _LaneTables:
    """Per gallery index (the `order` value of a column): lane membership as bytes, as words of eight byte lanes,
    as one bit mask; and the column. And where each identity code's run of columns starts."""

    bytes_: np.ndarray  # [N, 8 * words] uint8, 0/1
    words: list[np.ndarray]  # words[w][N] uint64: lanes 8w .. 8w + 7, one byte each
    bits: np.ndarray  # [N] uint64, bit t = lane t
    column: np.ndarray  # [N]
    n_columns: int
    code_starts: np.ndarray  # first column of each code present


def _lane_tables(lanes: np.ndarray, order: np.ndarray, gcode: np.ndarray) -> _LaneTables:
    """Lookup tables of lanes [L <= 64, m] (bool, over the columns) by gallery index."""
    n_lanes, size = lanes.shape[0], int(order.max()) + 1
    n_words = (n_lanes + 7) // 8
    table = np.zeros((size, 8 * n_words), dtype=np.uint8)
    table[order, :n_lanes] = lanes.T
    packed = table.view(np.uint64)
    bits = np.zeros(size, dtype=np.uint64)
    bits[order] = (lanes.T.astype(np.uint64) << np.arange(n_lanes, dtype=np.uint64)).sum(1, dtype=np.uint64)
    column = np.zeros(size, dtype=np.intp)
    column[order] = np.arange(len(order))
    return _LaneTables(table, [np.ascontiguousarray(packed[:, w]) for w in range(n_words)], bits, column, len(gcode),
                       np.flatnonzero(np.diff(gcode, prepend=gcode[0] - 1)))


def _width_groups(need: np.ndarray) -> Iterable[tuple[np.ndarray, int]]:
    """The rows with need > 0 in groups of similar need (ascending), each with the group's largest need: a group's
    rectangle of sorted columns is then barely wider than its rows use."""
    rows = np.argsort(need, kind="stable")
    rows = rows[need[rows] > 0]
    for s in range(0, len(rows), _WIDTH_GROUP):
        group = rows[s : s + _WIDTH_GROUP]
        yield group, int(need[group[-1]])


def _counts_before(keys: np.ndarray, pos: np.ndarray, last: np.ndarray, tables: _LaneTables, n_lanes: int) -> np.ndarray:
    """Per row and lane, how many of the lane's columns precede each position pos[r, k] of the sorted `keys`
    (ascending per row; those past last[r], the row's last needed position, count as last[r]) [n, lanes, K]."""
    out = np.zeros((len(pos), n_lanes, pos.shape[1]), dtype=np.int32)
    for rows, width in _width_groups(last):
        out[rows] = _counts_block(keys[rows, :width], np.minimum(pos[rows], last[rows, None]), last[rows], tables,
                                  n_lanes)
    return out


def _counts_block(keys: np.ndarray, pos: np.ndarray, last: np.ndarray, tables: _LaneTables, n_lanes: int) -> np.ndarray:
    """_counts_before for rows whose positions are at most last[r] <= the width of `keys` (> 0)."""
    n, width = keys.shape
    # segment starts per row: every _SEGMENT columns from 0, each position, the row's end (all clipped to it)
    grid = np.broadcast_to(np.arange(0, width, _SEGMENT), (n, (width - 1) // _SEGMENT + 1))
    bounds = np.sort(np.minimum(np.concatenate([grid, pos, last[:, None]], axis=1), last[:, None]), axis=1)
    flat = (bounds + np.arange(n)[:, None] * width).ravel()
    empty = np.zeros(bounds.shape, dtype=bool)
    empty[:, :-1] = bounds[:, 1:] == bounds[:, :-1]
    index = _low_half(keys)
    sums = np.empty((flat.size, len(tables.words)), dtype=np.uint64)
    buf = np.empty(n * width + 1, dtype=np.uint64)
    buf[-1] = 0  # a spare entry: the last row's end may index it
    for w, words in enumerate(tables.words):
        np.take(words, index, out=buf[:-1].reshape(n, width), mode="clip")  # "clip": no buffered copy
        sums[:, w] = np.add.reduceat(buf, flat)
    sums[empty.ravel()] = 0  # reduceat gives one element, not zero, for an empty segment
    # lanes first, segments last: the running sum then walks contiguous memory
    per_lane = sums.view(np.uint8).reshape(n, bounds.shape[1], -1)[..., :n_lanes].transpose(0, 2, 1).astype(np.int32)
    before = np.cumsum(per_lane, axis=2, dtype=np.int32) - per_lane  # columns in the segments before each start
    # where pos[r, k] first appears among the starts: grid points below it, positions below it (pos ascends)
    new = np.ones(pos.shape, dtype=bool)
    new[:, 1:] = pos[:, 1:] != pos[:, :-1]
    first_equal = np.maximum.accumulate(np.where(new, np.arange(pos.shape[1]), 0), axis=1)
    at = (pos + _SEGMENT - 1) // _SEGMENT + first_equal  # [n, K]
    flat_at = (np.arange(n * n_lanes)[:, None] * before.shape[2]).reshape(n, n_lanes, 1) + at[:, None, :]
    return before.ravel()[flat_at]  # one flat gather: take_along_axis's broadcast indexing is slower here


def _distinct_before(keys: np.ndarray, pos: np.ndarray, pos_bits: np.ndarray, first: np.ndarray, hard: np.ndarray,
                     tables: _LaneTables) -> np.ndarray:
    """Per row and lane [n, lanes]: how many identities have a column of the lane sorted before first[r, l], the
    position of the row's first true match in that lane, for the (row, lane) pairs marked in `hard` (else 0)."""
    n, n_lanes = hard.shape
    out = np.zeros((n, n_lanes), dtype=np.int64)
    lane_bit = np.uint64(1) << np.arange(n_lanes, dtype=np.uint64)
    hard_bits = (hard.astype(np.uint64) * lane_bit).sum(1, dtype=np.uint64)
    # a lane stays open up to its first true match: closed from the first position of a true match in the lane on
    # (so the true matches add nothing: one in an open lane would be that lane's first); between two consecutive
    # true matches the open lanes do not change
    still_open = np.zeros((n, pos.shape[1] + 1), dtype=np.uint64)
    still_open[:, 1:] = np.bitwise_or.accumulate(pos_bits, axis=1)
    np.bitwise_and(~still_open, hard_bits[:, None], out=still_open)
    for rows, width in _width_groups(np.where(hard, first, 0).max(1)):
        gidx = _low_half(keys[rows, :width])
        edges = np.zeros((len(rows), pos.shape[1] + 2), dtype=np.int64)  # 0, the positions (clipped), width
        np.minimum(pos[rows], width, out=edges[:, 1:-1])
        edges[:, -1] = width
        run = edges[:, 1:] - edges[:, :-1]  # columns from each true match (or the start) to the next
        lanes_open = np.repeat(still_open[rows].ravel(), run.ravel()).reshape(len(rows), width)
        by_column = np.zeros(len(rows) * tables.n_columns, dtype=np.uint64)  # open lanes of each column
        by_column[(tables.column[gidx] + (np.arange(len(rows)) * tables.n_columns)[:, None]).ravel()] = \
            (tables.bits[gidx] & lanes_open).ravel()
        ids = np.bitwise_or.reduceat(by_column.reshape(len(rows), -1), tables.code_starts, axis=1)  # [rows, ids]
        per_bit = np.unpackbits(ids.view(np.uint8).reshape(*ids.shape, 8), axis=2, bitorder="little")
        out[rows] = per_bit.sum(1, dtype=np.uint16 if ids.shape[1] < 1 << 16 else np.int64)[:, :n_lanes]  # narrow: faster
    return out


def _lane_block_stats(keys: np.ndarray, pos_keys: np.ndarray, live: np.ndarray,
                      tables: _LaneTables, n_lanes: int) -> tuple[np.ndarray, ...]:
    """AP, INP, unique-id rank and true-match count [n, lanes] of rows whose keys are sorted and whose true matches'
    keys (ascending, padding where not `live`) are `pos_keys` [n, K]."""
    n, m = keys.shape
    pos = np.empty(pos_keys.shape, dtype=np.int64)
    for r in range(n):  # numpy's own search, row by row, beats a vectorized one; padding keys land at m
        pos[r] = np.searchsorted(keys[r], pos_keys[r])
    gidx = np.where(live, _low_half(pos_keys), 0)
    member = tables.bytes_[gidx][..., :n_lanes].transpose(0, 2, 1).astype(bool) & live[:, None, :]  # [n, lanes, K]
    counts = np.count_nonzero(member, axis=2)
    last = np.where(live, pos, 0).max(1)
    before = _counts_before(keys, pos, last, tables, n_lanes)  # lane columns before each true match [n, lanes, K]
    # the true matches of each (row, lane), in order: hits[i] of them up to match i, of 1-based rank ranks[i]
    where = np.flatnonzero(member)
    group = where // member.shape[2]
    ends = np.cumsum(counts.ravel())
    hits = np.arange(1, len(where) + 1) - np.repeat(ends - counts.ravel(), counts.ravel())
    ranks = before.ravel()[where] + 1.0
    ap = np.bincount(group, weights=hits / ranks, minlength=n * n_lanes).reshape(n, n_lanes) / np.maximum(counts, 1)
    live_lanes = counts.ravel() > 0
    inp, rank = np.zeros(n * n_lanes), np.zeros(n * n_lanes, dtype=np.int64)
    inp[live_lanes] = counts.ravel()[live_lanes] / ranks[ends[live_lanes] - 1]
    rank[live_lanes] = ranks[(ends - counts.ravel())[live_lanes]] - 1  # columns before the first true match
    inp, rank = inp.reshape(n, n_lanes), rank.reshape(n, n_lanes)
    # with at most one column before the first true match, the id rank is that count; only others need the ids
    hard = (rank > 1) & (counts > 0)
    if hard.any():
        pos_bits = np.where(live, tables.bits[gidx], np.uint64(0))
        first_pos = np.take_along_axis(pos, member.argmax(2), axis=1)  # each lane's first true match
        rank = np.where(hard, _distinct_before(keys, pos, pos_bits, first_pos, hard, tables), rank)
    return ap, inp, rank, counts


def subset_stats(dist: np.ndarray, qcode: np.ndarray, gcode: np.ndarray, order: np.ndarray,
                 lanes: np.ndarray) -> list[np.ndarray]:
    """AP, INP, unique-id rank and true-match count [L, n] of each query row of `dist` [n, m] (float32, left
    unmodified) against each gallery subset lanes[l] (bool [L, m] over the columns), as if each subset were ranked on
    its own: what group_stats gives for one subset, for all of them in one pass.

    Columns are sorted by identity code `gcode`; `order` [m] (distinct, < 2**32, e.g. the gallery index) decides ties
    between equal distances, as a stable sort by `order` would. Exact: one sort per row, then counts; no subset is
    sorted on its own (the SYSU-MM01 protocol's 40 trials cost about one sort of the union of their galleries).
    """
    n, m = dist.shape
    n_lanes = lanes.shape[0]
    if not (n and m and n_lanes):
        return [np.zeros((n_lanes, n)), np.zeros((n_lanes, n)), np.zeros((n_lanes, n), dtype=np.int64),
                np.zeros((n_lanes, n), dtype=np.int64)]
    starts = np.searchsorted(gcode, np.arange(int(max(gcode.max(), qcode.max())) + 2))
    lo, n_true = starts[qcode], starts[qcode + 1] - starts[qcode]
    by_count = np.argsort(n_true, kind="stable")  # a task's rows then have about as many true matches each
    groups = [_lane_tables(lanes[s : s + _LANES], order, gcode) for s in range(0, n_lanes, _LANES)]
    order32 = order.astype(np.uint32)

    def chunk(s: int) -> list[np.ndarray]:
        rows = by_count[s : s + _SUBSET_ROWS]
        keys = _sort_keys(dist[rows], order32)
        slot = np.arange(max(int(n_true[rows].max()), 1))
        live = slot[None, :] < n_true[rows, None]
        cols = np.minimum(lo[rows, None] + slot[None, :], m - 1)
        pos_keys = np.where(live, np.take_along_axis(keys, cols, axis=1), np.uint64(np.iinfo(np.uint64).max))
        pos_keys.sort(axis=1)
        keys.sort(axis=1)
        out = [_lane_block_stats(keys, pos_keys, live, t, min(_LANES, n_lanes - g * _LANES))
               for g, t in enumerate(groups)]
        return [np.concatenate([o[i] for o in out], axis=1).T for i in range(4)]

    parts = parallel_map(chunk, range(0, n, _SUBSET_ROWS))
    result = [np.empty((n_lanes, n)), np.empty((n_lanes, n)), np.empty((n_lanes, n), dtype=np.int64),
              np.empty((n_lanes, n), dtype=np.int64)]
    for arr, values in zip(result, zip(*parts)):
        arr[:, by_count] = np.concatenate(values, axis=1)
    return result
