"""Multi-Spectral Enhanced Ranking (MSER): k-reciprocal re-ranking over multi-view features, in bounded memory.

Semantics follow the reference (Zhong et al. 2017 re-ranking without the neighbour-expansion step):
squared Euclidean distances over the union of query and gallery items (the multi-view side contributes
every view), "original distance" = each row divided by its maximum, V = normalised exp(-original) weights
over k-reciprocal neighbours, query expansion over the k2 nearest, Jaccard distance from V, final =
(1 - lambda) * Jaccard + lambda * original on the query x gallery block, averaged over views.
We compute V and the Jaccard in float32 where the reference stores them in float16 (docs/deviations.md).

With neighbours from the query part (SYSU-MM01) every item's neighbours are queries, so the queries'
neighbour lists and reciprocal sets, and each gallery item's nearest queries, do not depend on which other
gallery items are present: `MserReranker` computes them once and re-ranks any number of gallery subsets
(the protocol's trials) against them; per subset only the row maxima, hence V's values, change.

The Jaccard overlap sums min(E[i, k], E[j, k]) only over the V columns k that a query row and a gallery row
share: each query entry meets the gallery entries of its column (inverted lists, as in the reference code),
vectorized over pieces of those lists, or, for a column holding much of the gallery, one dense gallery row.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F

from mcja.errors import ConfigError
from mcja.evaluation._arrays import as_views
from mcja.evaluation.metrics import pairwise_dot

NEIGHBOUR_RULES = ("query", "all")
JACCARD_JOINS = ("auto", "dense", "sparse")  # how the Jaccard overlap is computed; the results agree to ~1e-7
RERANKERS = (None, "mser")
_ROW_CHUNK = 1024  # rows of a distance matrix held at once
_JOIN_CHUNK = 1 << 20  # (query entry, gallery entry) pairs, padding included, expanded at once in the sparse join
_PIECE = 128  # the sparse join cuts each V column's gallery entries into pieces of this many
# A V column whose entries fill more than this share of the gallery is joined densely: bench_mser.py's sweep puts
# the break-even at a fill of about 0.45 (2 threads; the sparse join keeps winning longer on one thread).
_DENSE_SHARE = 0.4

Csr = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # row pointers, column indices, values


@dataclass(frozen=True)
class MserParams:
    """MSER's parameters: neighbours k1, query expansion k2, weight lambda of the original distance, and where
    neighbours come from ("query": the query part only, SYSU-MM01's masking; "all": every item, RegDB's)."""

    k1: int = 40
    k2: int = 20
    lambda_value: float = 0.3
    neighbours: str = "query"
    multi_view: str | None = None  # which side's views to average ("query" / "gallery"); None: the side whose views differ
    normalize: bool = True  # L2-normalise the features first
    jaccard: str = "auto"  # the Jaccard join per V column: "auto" (by its fill), or "dense" / "sparse" for all (JACCARD_JOINS)

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `mser_rerank` / `MserReranker`."""
        return asdict(self)

    def describe(self) -> str:
        """'k1 40, k2 20, lambda 0.3, neighbours from the queries'."""
        where = "the queries" if self.neighbours == "query" else "all items"
        return f"k1 {self.k1}, k2 {self.k2}, lambda {self.lambda_value:g}, neighbours from {where}"


# The published settings (MCJA-SPEC, MSER). LLCM has no published MSER setting: like SYSU-MM01 it is a multi-camera
# set with infrared queries in its headline direction, so it takes SYSU-MM01's (what the evaluation always used).
MSER_PRESETS: dict[str, MserParams] = {
    "sysu": MserParams(),
    "regdb": MserParams(k1=50, k2=10, lambda_value=0.2, neighbours="all"),
    "llcm": MserParams(),
}


def choose_mser(preset: str | None = None, k1: int | None = None, k2: int | None = None,
                lambda_value: float | None = None, auto: MserParams = MserParams()) -> MserParams:
    """A preset by name (None or 'auto': `auto`, e.g. a protocol's own) with any of k1, k2, lambda given over it;
    ConfigError naming a bad name or value (k1, k2 >= 1; lambda 0..1)."""
    if preset not in (None, "auto", *MSER_PRESETS):
        raise ConfigError(f"--mser-preset {preset!r}: expected one of auto, {', '.join(MSER_PRESETS)}")
    for option, value, low, high in (("--mser-k1", k1, 1, None), ("--mser-k2", k2, 1, None),
                                     ("--mser-lambda", lambda_value, 0, 1)):
        if value is not None and not (low <= value and (high is None or value <= high)):
            raise ConfigError(f"{option} {value}: expected {f'{low}..{high}' if high is not None else f'>= {low}'}")
    given = {"k1": k1, "k2": k2, "lambda_value": lambda_value}
    return replace(auto if preset in (None, "auto") else MSER_PRESETS[preset],
                   **{k: v for k, v in given.items() if v is not None})


def refuse_unused_mser(flag: str, preset: str | None = None, k1: int | None = None, k2: int | None = None,
                       lambda_value: float | None = None) -> None:
    """ConfigError when MSER's parameters are given but re-ranking (`flag`) is off: they would change nothing."""
    given = [name for name, v in (("--mser-preset", None if preset == "auto" else preset), ("--mser-k1", k1),
                                  ("--mser-k2", k2), ("--mser-lambda", lambda_value)) if v is not None]
    if given:
        raise ConfigError(f"{', '.join(given)}: MSER's parameters apply only with {flag}")


def resolve_mser(rerank: str | None, params: dict[str, Any], preset: MserParams = MserParams()) -> MserParams | None:
    """The parameters of a call in the array form (`rerank=..., k1=...`): None for plain ranking, else `preset` with
    `params` over it."""
    if rerank not in RERANKERS:
        raise ValueError(f"rerank must be one of {RERANKERS}, got {rerank!r}")
    if rerank is None:
        if params:
            raise TypeError(f"re-ranking parameters given without rerank: {sorted(params)}")
        return None
    return replace(preset, **params)


def _sq_dist(x: torch.Tensor, y: torch.Tensor, sq_x: torch.Tensor, sq_y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances [len(x), len(y)] as the reference expands them: (|x|^2 + |y|^2) - 2 x.y."""
    return pairwise_dot(x, y).mul_(-2.0).add_(sq_x[:, None] + sq_y[None, :])


@dataclass
class _Items:
    """All items of one re-ranking problem: features [N, D] with the query part first."""

    feats: torch.Tensor
    sq: torch.Tensor  # squared norms [N]
    nqp: int  # size of the query part

    @property
    def n(self) -> int:
        """Number of items."""
        return self.feats.shape[0]

    def dist(self, rows: slice, cols: slice) -> torch.Tensor:
        """Squared Euclidean distances between two ranges of items."""
        return _sq_dist(self.feats[rows], self.feats[cols], self.sq[rows], self.sq[cols])


def _single_view(x: torch.Tensor) -> bool:
    """True when all views of [V, N, D] features are the same tensor values (e.g. infrared images)."""
    return x.shape[0] == 1 or all(torch.equal(x[0], x[v]) for v in range(1, x.shape[0]))


def _pick_views(q: torch.Tensor, g: torch.Tensor, multi_view: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep all views on the multi-view side and view 0 on the other (the reference uses one side's views)."""
    if multi_view is None:
        q = q[:1] if _single_view(q) else q
        g = g[:1] if _single_view(g) else g
        if q.shape[0] > 1 and g.shape[0] > 1:
            raise ValueError("both query and gallery features have distinct views; pass multi_view='query' or 'gallery'")
        return q, g
    if multi_view not in ("query", "gallery"):
        raise ValueError(f"multi_view must be 'query', 'gallery' or None, got {multi_view!r}")
    return (q, g[:1]) if multi_view == "query" else (q[:1], g)


def _neighbours(items: _Items, rows: slice, kmax: int, masked: bool) -> tuple[torch.Tensor, ...]:
    """Nearest-first neighbour indices [r, kmax], their true distances, row maxima, and for query rows the
    distances to the gallery part.

    With masking only the query part is ranked: the reference sets distances into the gallery part to the
    global maximum, so gallery items come after every query item, in index order (a stable sort's order).
    """
    n, nqp = items.n, items.nqp
    d = items.dist(rows, slice(0, n))
    ranked = d[:, :nqp] if masked else d
    k = min(kmax, ranked.shape[1])
    nd, nb = torch.topk(ranked, k, dim=1, largest=False, sorted=True)
    if masked and k < kmax:  # fewer queries than neighbours: gallery items follow in index order
        end = min(n, nqp + kmax - k)  # with fewer items than kmax in all, the table is just narrower
        extra = torch.arange(nqp, end, device=d.device)
        nb = torch.cat([nb, extra.expand(nb.shape[0], -1)], 1)
        nd = torch.cat([nd, d[:, nqp:end]], 1)
    return nb, nd, d.max(1).values, (d[:, nqp:] if rows.start < nqp else None)


def _neighbour_table(items: _Items, kmax: int, masked: bool) -> tuple[torch.Tensor, ...]:
    """Neighbours [N, kmax], their distances, row maxima, and the raw query x gallery distance block."""
    n, nqp = items.n, items.nqp
    nbs, nds, maxima = [], [], []
    block = torch.empty(nqp, n - nqp, device=items.feats.device)
    starts = [(s, nqp) for s in range(0, nqp, _ROW_CHUNK)] + [(s, n) for s in range(nqp, n, _ROW_CHUNK)]
    for s, end in starts:  # chunks never straddle the query/gallery boundary
        rows = slice(s, min(s + _ROW_CHUNK, end))
        nb, nd, row_max, qg = _neighbours(items, rows, kmax, masked)
        if qg is not None:
            block[rows] = qg
        nbs.append(nb), nds.append(nd), maxima.append(row_max)
    return torch.cat(nbs), torch.cat(nds), torch.cat(maxima), block


def _reciprocal(nb: torch.Tensor, k1: int) -> torch.Tensor:
    """recip[i, a]: item i is among the k1 + 1 nearest of its a-th neighbour (and vice versa by construction)."""
    fwd = nb[:, : k1 + 1]
    out = torch.empty_like(fwd, dtype=torch.bool)
    for s in range(0, fwd.shape[0], _ROW_CHUNK):
        mine = torch.arange(s, min(s + _ROW_CHUNK, fwd.shape[0]), device=nb.device)
        out[s : s + len(mine)] = (fwd[fwd[s : s + len(mine)]] == mine[:, None, None]).any(-1)
    return out


def _csr(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A sparse CSR tensor (torch flags the layout as beta; that warning says nothing to our users)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, val, size=size, check_invariants=False)


def _parts(m: torch.Tensor) -> Csr:
    """Row pointers, column indices and values of a sparse CSR tensor."""
    return m.crow_indices(), m.col_indices(), m.values()


def _v_matrix(fwd: torch.Tensor, fdist: torch.Tensor, recip: torch.Tensor, row_max: torch.Tensor,
              size: tuple[int, int]) -> torch.Tensor:
    """Sparse V: row i spreads exp(-distance / row maximum) over its k-reciprocal neighbours fwd[i][recip[i]],
    normalised to sum 1; rows past len(fwd) are empty."""
    fwd, order = fwd.sort(1)  # CSR columns ascending within a row
    recip, fdist = recip.gather(1, order), fdist.gather(1, order)
    w = torch.where(recip, torch.exp(-fdist / row_max[: len(fwd), None]), 0.0)
    w = w / w.sum(1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    crow = torch.zeros(size[0] + 1, dtype=torch.int64, device=fwd.device)
    crow[1 : len(fwd) + 1] = torch.cumsum(recip.sum(1), 0)
    crow[len(fwd) + 1 :] = crow[len(fwd)]
    return _csr(crow, fwd[recip], w[recip], size)


def _expand(v: torch.Tensor, near: torch.Tensor) -> Csr:
    """Query expansion: row r of the result is the mean of the V rows near[r] ([R, k2] item indices)."""
    r, k = near.shape
    crow = torch.arange(0, r * k + 1, k, device=near.device)
    ones = torch.ones(r * k, dtype=v.dtype, device=near.device)
    crow, col, val = _parts(torch.sparse.mm(_csr(crow, near.sort(1).values.reshape(-1), ones, (r, v.shape[0])), v))
    return crow, col, val.div_(k)  # sum, then divide: the reference's np.mean


def _row_of(crow: torch.Tensor) -> torch.Tensor:
    """Row index of every entry of a CSR matrix, from its row pointers."""
    return torch.repeat_interleave(torch.arange(len(crow) - 1, device=crow.device), crow.diff())


def _jaccard_overlap(e: Csr, nqp: int, n_cols: int, join: str = "auto", views: int = 1) -> torch.Tensor:
    """S[i, j] = sum_k min(E[i, k], E[nqp + j, k]) for the first nqp rows i of CSR E against the others (`views`
    views of the gallery items, view-major): each query entry (i, k) meets the gallery entries of column k,
    sparsely or, for well-filled columns, densely (`join` "auto"; "dense" or "sparse" force one way for all)."""
    crow, col, val = e
    ngp, split = len(crow) - 1 - nqp, int(crow[nqp])
    q = (_row_of(crow[: nqp + 1]), col[:split], val[:split])
    g = (crow[nqp:] - split, col[split:], val[split:])
    out = torch.zeros(nqp, ngp, dtype=val.dtype, device=val.device)
    count = torch.bincount(g[1], minlength=n_cols)
    dense = count > (_DENSE_SHARE * ngp if join == "auto" else 0 if join == "dense" else ngp)
    in_dense = dense[q[1]]
    if bool(in_dense.any()):
        _dense_join(out, tuple(x[in_dense] for x in q), (_row_of(g[0]), g[1], g[2]), dense)
    _sparse_join(out, tuple(x[~in_dense] for x in q), g, n_cols, views)
    return out


def _dense_join(out: torch.Tensor, q: tuple[torch.Tensor, ...], g: tuple[torch.Tensor, ...],
                dense: torch.Tensor) -> None:
    """out[i] += min(v, column k of the gallery entries, dense) for each query entry (row i, column k, value v)
    of a `dense` column, about 4M floats at a time."""
    slot = torch.cumsum(dense, 0) - 1  # row of each dense column in the dense copy
    in_dense = dense[g[1]]
    g_dense = torch.zeros(int(dense.sum()), out.shape[1], dtype=out.dtype, device=out.device)
    g_dense[slot[g[1][in_dense]], g[0][in_dense]] = g[2][in_dense]
    (q_rows, q_cols, q_vals), step = q, max(1, (1 << 22) // max(out.shape[1], 1))
    for s in range(0, len(q_rows), step):
        rows = g_dense[slot[q_cols[s : s + step]]]
        out.index_add_(0, q_rows[s : s + step], torch.minimum(rows, q_vals[s : s + step, None], out=rows))


def _n_lanes(views: int) -> int:
    """Lanes of the sparse join: 2 (views 2u and 2u + 1 of one gallery item joined at once) for an even number of
    views, else 1."""
    return 2 if views >= 2 and views % 2 == 0 else 1


def _lanes(rows: torch.Tensor, n_rows: int, views: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Row pair, lane and the number of lanes for gallery rows laid out view-major ([views, n]) (`_n_lanes`)."""
    lanes = _n_lanes(views)
    if lanes == 1:
        return rows, torch.zeros_like(rows), 1
    n = n_rows // views
    view = rows // n
    return (view // 2) * n + rows % n, view % 2, 2


def _csc(g: Csr, n_cols: int, views: int) -> tuple[torch.Tensor, ...]:
    """Column pointers, row pairs and values [nnz, lanes] of gallery CSR g by column (`_lanes`; a lane without an
    entry holds 0)."""
    crow, col, val = g
    if val.device.type != "cpu":
        pair, lane, lanes = _lanes(_row_of(crow), len(crow) - 1, views)
        return _csc_sorted(pair, col, val, lane, lanes, n_cols)
    # scipy: row blocks, a merge of sorted rows and a counting sort (2-4x faster than a sort); lanes sum exactly (x + 0)
    m = scipy.sparse.csr_matrix((val.numpy(), col.numpy(), crow.numpy()), shape=(len(crow) - 1, n_cols))
    if _n_lanes(views) == 1:
        m = m.tocsc()
        return torch.from_numpy(m.indptr).long(), torch.from_numpy(m.indices).long(), torch.from_numpy(m.data)[:, None]
    n, ctype = m.shape[0] // views, np.complex64 if val.dtype == torch.float32 else np.complex128
    lane = [scipy.sparse.vstack([m[v * n : (v + 1) * n] for v in range(first, views, 2)], format="csr").astype(ctype) for first in (0, 1)]
    m = (lane[0] + lane[1] * ctype(1j)).tocsc()
    return torch.from_numpy(m.indptr).long(), torch.from_numpy(m.indices).long(), torch.view_as_real(torch.from_numpy(m.data))


def _csc_sorted(pair: torch.Tensor, col: torch.Tensor, val: torch.Tensor, lane: torch.Tensor, lanes: int,
                n_cols: int) -> tuple[torch.Tensor, ...]:
    """`_csc` with torch's sort, on any device."""
    n_pairs = int(pair.max()) + 1 if len(pair) else 1
    keys, inverse = torch.unique(col * n_pairs + pair, return_inverse=True)
    vals = torch.zeros(len(keys), lanes, dtype=val.dtype, device=val.device)
    vals[inverse, lane] = val
    ccol = torch.zeros(n_cols + 1, dtype=torch.int64, device=col.device)
    ccol[1:] = torch.cumsum(torch.bincount(keys // n_pairs, minlength=n_cols), 0)
    return ccol, keys % n_pairs, vals


def _ragged(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenated ranges [starts[i], starts[i] + counts[i])."""
    total = int(counts.sum())
    ends = torch.cumsum(counts, 0)
    return torch.repeat_interleave(starts - (ends - counts), counts, output_size=total) + torch.arange(total, device=starts.device)


def _pieces(g: Csr, n_cols: int, views: int) -> tuple[torch.Tensor, ...]:
    """The entries of each column of gallery CSR g (`_csc`) cut into pieces of _PIECE: values [P + 1, _PIECE, lanes]
    and row pairs [P + 1, _PIECE] (each column's last piece padded with value 0 at pair 0, which adds nothing;
    piece P all padding), and each column's first piece and piece count."""
    ccol, rows, vals = _csc(g, n_cols, views)
    count = ccol.diff()
    n_pieces = (count + _PIECE - 1) // _PIECE
    first = torch.cumsum(n_pieces, 0) - n_pieces
    at = _ragged(first * _PIECE, count)  # place of each entry in the pieces
    size = (int(n_pieces.sum()) + 1) * _PIECE
    piece_vals = torch.zeros(size, vals.shape[1], dtype=vals.dtype, device=vals.device).index_copy_(0, at, vals)
    piece_rows = torch.zeros(size, dtype=torch.int64, device=vals.device).index_copy_(0, at, rows)
    return piece_vals.view(-1, _PIECE * vals.shape[1]), piece_rows.view(-1, _PIECE), first, n_pieces


def _row_groups(counts: list[int], budget: int, max_rows: int, min_rows: int = 16) -> list[tuple[int, int, int]]:
    """(start, end, slice width) for rows sorted by ascending count: as many rows as fit `budget` at the group's
    largest count, at least `min_rows` (torch's scatter shares a block's rows among its threads) and at most
    `max_rows`; a group is done in slices of that width along the counts."""
    groups, start, max_rows = [], 0, max(max_rows, min_rows)
    while start < len(counts):
        end = start + 1
        while end < len(counts) and end - start < max_rows and (end - start < min_rows or (end + 1 - start) * counts[end] <= budget):
            end += 1
        groups.append((start, end, max(1, min(counts[end - 1], budget // (end - start)))))
        start = end
    return groups


def _sparse_join(out: torch.Tensor, q: tuple[torch.Tensor, ...], g: Csr, n_cols: int, views: int) -> None:
    """out[i, j] += min(v, w) for each query entry (row i, column k, value v) and each gallery entry (row j,
    column k, value w) of the same column: each query entry meets the pieces of its column (inverted lists), the
    two lanes of a row pair at once (one complex scatter-add). Rows with similar piece counts are done together,
    about _JOIN_CHUNK pairs at a time."""
    q_rows, q_cols, q_vals = q
    views = views if out.device.type == "cpu" else 1  # complex scatter-adds only where they were measured and tested
    piece_vals, piece_rows, first, n_pieces = _pieces(g, n_cols, views)
    lanes = piece_vals.shape[1] // _PIECE
    entries = (n_pieces[q_cols], first[q_cols], q_vals)  # per query entry (in row order): its pieces, the first, its value
    row_entries = torch.bincount(q_rows, minlength=len(out))
    row_pieces = torch.zeros(len(out), dtype=torch.int64, device=out.device).index_add_(0, q_rows, entries[0])
    rows = torch.argsort(row_pieces, stable=True)
    rows = rows[row_pieces[rows] > 0]
    counts = row_pieces[rows].tolist()
    groups = _row_groups(counts, max(1, _JOIN_CHUNK // (_PIECE * lanes)), _JOIN_CHUNK // max(1, out.shape[1]))
    size = max([(end - start) * width for start, end, width in groups], default=0)
    vals_buf = torch.empty(size, _PIECE * lanes, dtype=out.dtype, device=out.device)
    rows_buf = torch.empty(size, _PIECE, dtype=torch.int64, device=out.device)
    row_first = torch.cumsum(row_entries, 0) - row_entries
    for start, end, width in groups:
        group = rows[start:end]
        pid, near = _group_pieces(group, row_first[group], row_entries[group], row_pieces[group], entries, len(piece_vals) - 1, width)
        block = torch.zeros(len(group), out.shape[1] // lanes, lanes, dtype=out.dtype, device=out.device)
        flat = torch.view_as_complex(block) if lanes == 2 else block.view(len(group), -1)
        for ids, a in zip(pid.view(len(pid), -1), near.view(len(pid), -1, 1)):
            vals = torch.index_select(piece_vals, 0, ids, out=vals_buf[: len(ids)])
            torch.minimum(vals, a, out=vals)
            target = torch.index_select(piece_rows, 0, ids, out=rows_buf[: len(ids)])
            src = vals.view(len(group), -1, lanes)
            flat.scatter_add_(1, target.view(len(group), -1), torch.view_as_complex(src) if lanes == 2 else src.squeeze(-1))
        out.index_add_(0, group, _unpair(block, views))


def _group_pieces(group: torch.Tensor, row_first: torch.Tensor, row_entries: torch.Tensor, row_pieces: torch.Tensor,
                  entries: tuple[torch.Tensor, ...], pad: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Piece ids and query values [slices, rows, width] of the (query entry, piece) pairs of each row of `group`, in
    slices of `width` along the row, padded with piece `pad` and value 0. Per row: its first query entry, entries and
    pieces; `entries`: per query entry its number of pieces, its column's first piece and its value."""
    per, first, vals = entries
    e = _ragged(row_first, row_entries)  # the rows' query entries
    n = per[e]
    local = torch.arange(len(group), device=group.device).repeat_interleave(row_pieces, output_size=int(n.sum()))
    pos = _ragged(torch.zeros_like(row_pieces), row_pieces)  # place of each pair within its row
    shape = (-(-int(row_pieces.max()) // width), len(group), width)
    pid = torch.full(shape, pad, dtype=torch.int64, device=group.device)
    near = torch.zeros(shape, dtype=vals.dtype, device=vals.device)
    at = (pos // width, local, pos % width)
    pid[at] = _ragged(first[e], n)
    near[at] = vals[e].repeat_interleave(n, output_size=len(pos))
    return pid, near


def _unpair(block: torch.Tensor, views: int) -> torch.Tensor:
    """[rows, pairs, lanes] back to the gallery's view-major order [rows, views * n] (`_lanes`)."""
    if block.shape[2] == 1:
        return block.view(len(block), -1)
    return block.view(len(block), views // 2, -1, 2).transpose(2, 3).reshape(len(block), -1)


def _final(original: torch.Tensor, row_max: torch.Tensor, overlap: torch.Tensor, lambda_value: float) -> torch.Tensor:
    """(1 - lambda) * (1 - S / (2 - S)) + lambda * original / row max, updating the two [nqp, ngp] buffers in place."""
    original.div_(row_max[:, None]).mul_(lambda_value)
    jaccard = overlap.neg_().div_(overlap.add(2.0)).add_(1.0)  # overlap holds -S, so this is 1 - S / (2 - S)
    return original.add_(jaccard, alpha=1.0 - lambda_value)


class MserReranker:
    """MSER of one query set against a gallery or against any subsets of it (e.g. SYSU-MM01's trials).

    With neighbours from the query part and at least max(k1 + 1, k2) query items, all that does not depend on
    the subset is computed once here: the query x query neighbours and reciprocal sets, every query-gallery
    distance, each gallery item's k2 nearest queries. Otherwise each subset is re-ranked from scratch.
    """

    def __init__(self, query_feats: Any, gallery_feats: Any, k1: int = MserParams.k1, k2: int = MserParams.k2,
                 lambda_value: float = MserParams.lambda_value, neighbours: str = MserParams.neighbours,
                 multi_view: str | None = None, normalize: bool = True, jaccard: str = MserParams.jaccard) -> None:
        if neighbours not in NEIGHBOUR_RULES:
            raise ValueError(f"neighbours must be one of {NEIGHBOUR_RULES}, got {neighbours!r}")
        if jaccard not in JACCARD_JOINS:
            raise ValueError(f"jaccard must be one of {JACCARD_JOINS}, got {jaccard!r}")
        if k1 < 1 or k2 < 1:
            raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
        q, g = as_views(query_feats, "query"), as_views(gallery_feats, "gallery")
        q, g = _pick_views(q, g.to(q.device), multi_view)
        if normalize:
            q, g = F.normalize(q, dim=-1), F.normalize(g, dim=-1)
        self.k1, self.k2, self.lambda_value, self.masked, self.jaccard = k1, k2, lambda_value, neighbours == "query", jaccard
        self.views = (q.shape[0], q.shape[1], g.shape[0], g.shape[1])  # vq, nq, vg, ng
        self.q, self.g = q.reshape(-1, q.shape[-1]), g
        self.shared = self.masked and len(self.q) >= max(k1 + 1, k2)
        if self.shared:
            self._share()

    def _share(self) -> None:
        """The subset-independent part (see the class docstring); the query x gallery block stays in memory."""
        q, g, kmax = self.q, self.g.reshape(-1, self.g.shape[-1]), max(self.k1 + 1, self.k2)
        sq_q, sq_g = (q * q).sum(1), (g * g).sum(1)
        self.qg = torch.empty(len(q), len(g), device=q.device)
        nb, nd, qmax = [], [], []
        for s in range(0, len(q), _ROW_CHUNK):
            rows = slice(s, s + _ROW_CHUNK)
            d = _sq_dist(q[rows], q, sq_q[rows], sq_q)
            near = torch.topk(d, kmax, dim=1, largest=False, sorted=True)
            nb.append(near.indices), nd.append(near.values), qmax.append(d.max(1).values)
            self.qg[rows] = _sq_dist(q[rows], g, sq_q[rows], sq_g)
        nb, nd = torch.cat(nb), torch.cat(nd)
        self.qmax, self.recip = torch.cat(qmax), _reciprocal(nb, self.k1)
        self.fwd, self.fdist, self.near_q = nb[:, : self.k1 + 1], nd[:, : self.k1 + 1], nb[:, : self.k2]
        self.near_g = torch.cat([torch.topk(self.qg[:, s : s + _ROW_CHUNK], self.k2, dim=0, largest=False).indices.t()
                                 for s in range(0, len(g), _ROW_CHUNK)])

    def rerank(self, subset: Any = None) -> torch.Tensor:
        """Re-ranked distances [Nq, len(subset)] (a tensor on the features' device) against the gallery items
        `subset` (indices, in the order wanted; default: the whole gallery)."""
        vq, nq, vg, ng = self.views
        idx = torch.arange(ng) if subset is None else torch.as_tensor(np.asarray(subset, dtype=np.int64).reshape(-1))
        if len(idx) == 0:
            return torch.zeros(nq, 0, device=self.q.device)
        final = self._shared_final(idx.to(self.q.device)) if self.shared else self._full_final(idx.to(self.q.device))
        return final.view(vq, nq, vg, len(idx)).mean(dim=(0, 2))

    def _shared_final(self, idx: torch.Tensor) -> torch.Tensor:
        """Final distances [query items, gallery view-items of idx] from the shared part."""
        vg, ng = self.views[2:]
        cols = (torch.arange(vg, device=idx.device)[:, None] * ng + idx[None, :]).reshape(-1)  # view-major
        block = self.qg[:, cols]
        row_max = torch.maximum(self.qmax, block.max(1).values)
        nqp = len(self.q)
        v = _v_matrix(self.fwd, self.fdist, self.recip, row_max, (nqp + len(cols), nqp))  # gallery rows empty
        e = _expand(v, torch.cat([self.near_q, self.near_g[cols]])) if self.k2 > 1 else _parts(v)
        return _final(block, row_max, _jaccard_overlap(e, nqp, nqp, self.jaccard, vg), self.lambda_value)

    def _full_final(self, idx: torch.Tensor) -> torch.Tensor:
        """Final distances [query items, gallery view-items of idx], everything computed for this subset."""
        feats = torch.cat([self.q, self.g[:, idx].reshape(-1, self.q.shape[1])])
        items = _Items(feats, (feats * feats).sum(1), len(self.q))
        nb, nd, row_max, block = _neighbour_table(items, max(self.k1 + 1, self.k2), self.masked)
        fwd, fdist = nb[:, : self.k1 + 1], nd[:, : self.k1 + 1]
        v = _v_matrix(fwd, fdist, _reciprocal(nb, self.k1), row_max, (items.n, items.n))
        e = _expand(v, nb[:, : self.k2]) if self.k2 > 1 else _parts(v)
        return _final(block, row_max[: items.nqp], _jaccard_overlap(e, items.nqp, items.n, self.jaccard, self.views[2]), self.lambda_value)


def mser_rerank(
    query_feats: Any,
    gallery_feats: Any,
    k1: int = MserParams.k1,
    k2: int = MserParams.k2,
    lambda_value: float = MserParams.lambda_value,
    neighbours: str = MserParams.neighbours,
    multi_view: str | None = None,
    normalize: bool = True,
    jaccard: str = MserParams.jaccard,
) -> Any:
    """Re-ranked distances [Nq, Ng] (lower = closer) from [V, N, D] or [N, D] features; numpy in, numpy out.

    Defaults are SYSU-MM01's (`MSER_PRESETS`: RegDB uses k1=50, k2=10, lambda_value=0.2, neighbours="all"). The
    multi-view side is the one whose views differ (`multi_view` forces it); runs on the query features' device.
    `jaccard` picks how the Jaccard overlap is joined (JACCARD_JOINS; "dense" is the former implementation).
    """
    final = MserReranker(query_feats, gallery_feats, k1, k2, lambda_value, neighbours, multi_view, normalize, jaccard).rerank()
    return final if isinstance(query_feats, torch.Tensor) else final.cpu().numpy()
