"""Multi-Spectral Enhanced Ranking (MSER): k-reciprocal re-ranking over multi-view features, in bounded memory.

Semantics follow the reference (Zhong et al. 2017 re-ranking without the neighbour-expansion step):
squared Euclidean distances over the union of query and gallery items (the multi-view side contributes
every view), "original distance" = each row divided by its maximum, V = normalised exp(-original) weights
over k-reciprocal neighbours, query expansion over the k2 nearest, Jaccard distance from V, final =
(1 - lambda) * Jaccard + lambda * original on the query x gallery block, averaged over views.
We compute V and the Jaccard in float32 where the reference stores them in float16 (docs/deviations.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from mcja.evaluation._arrays import as_views

NEIGHBOUR_RULES = ("query", "all")
_ROW_CHUNK = 1024  # rows of the distance matrix held at once
_PAIR_CHUNK = 1 << 22  # (query entry, gallery entry) pairs expanded at once in the Jaccard join


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
        """Squared Euclidean distances between two ranges of items (the reference's expansion)."""
        x, y = self.feats[rows], self.feats[cols]
        return torch.addmm(self.sq[rows, None] + self.sq[None, cols], x, y.t(), beta=1.0, alpha=-2.0)


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
    if k < kmax:  # masked with fewer queries than neighbours: gallery items follow in index order
        extra = torch.arange(nqp, nqp + kmax - k, device=d.device)
        nb = torch.cat([nb, extra.expand(nb.shape[0], -1)], 1)
        nd = torch.cat([nd, d[:, nqp : nqp + kmax - k]], 1)
    return nb, nd, d.max(1).values, (d[:, nqp:] if rows.start < nqp else None)


def _reciprocal(nb: torch.Tensor, k1: int) -> torch.Tensor:
    """recip[i, a]: item i is among the k1 + 1 nearest of its a-th neighbour (and vice versa by construction)."""
    fwd = nb[:, : k1 + 1]
    out = torch.empty_like(fwd, dtype=torch.bool)
    for s in range(0, fwd.shape[0], _ROW_CHUNK):
        mine = torch.arange(s, min(s + _ROW_CHUNK, fwd.shape[0]), device=nb.device)
        out[s : s + len(mine)] = (fwd[fwd[s : s + len(mine)]] == mine[:, None, None]).any(-1)
    return out


def _coalesce_rows(first_row: int, rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n_rows: int, n_cols: int) -> tuple[torch.Tensor, ...]:
    """Sum duplicate (row, col) entries of a band of rows through a dense scratch; zeros dropped."""
    scratch = torch.zeros(n_rows * n_cols, dtype=vals.dtype, device=vals.device)
    scratch.index_add_(0, (rows - first_row) * n_cols + cols, vals)
    flat = scratch.nonzero(as_tuple=True)[0]
    return flat // n_cols + first_row, flat % n_cols, scratch[flat]


def _expanded_v(nb: torch.Tensor, recip: torch.Tensor, weights: torch.Tensor, k1: int, k2: int, n_cols: int) -> tuple[torch.Tensor, ...]:
    """Sparse V (rows sorted) after query expansion: row i is the mean of the V rows of i's k2 nearest items.

    Every V column lies below `n_cols` (the query part when neighbours come from it, else all items).
    """
    n = nb.shape[0]
    fwd = nb[:, : k1 + 1]
    if k2 == 1:  # the reference skips the expansion for k2 = 1
        r = torch.arange(n, device=nb.device)[:, None].expand_as(fwd)
        return r[recip], fwd[recip], weights[recip]
    nnz = recip.sum(1)
    v_cols, v_vals = fwd[recip], weights[recip]  # CSR of V: rows in order
    v_start = torch.cumsum(nnz, 0) - nnz
    band = max(1, (1 << 22) // max(n_cols, 1))  # rows per dense scratch of about 4M floats
    parts = []
    for s in range(0, n, band):
        near = nb[s : s + band, :k2].reshape(-1)
        cnt = nnz[near]
        entry = torch.arange(int(cnt.sum()), device=nb.device) + (v_start[near] - (torch.cumsum(cnt, 0) - cnt)).repeat_interleave(cnt)
        rows = torch.arange(s, s + near.numel() // k2, device=nb.device).repeat_interleave(k2).repeat_interleave(cnt)
        parts.append(_coalesce_rows(s, rows, v_cols[entry], v_vals[entry] / k2, near.numel() // k2, n_cols))
    return tuple(torch.cat(p) for p in zip(*parts))


def _jaccard_overlap(v: tuple[torch.Tensor, ...], nqp: int, n: int) -> torch.Tensor:
    """S[i, j] = sum_k min(V[i, k], V[j, k]) for query-part rows i and gallery-part rows j, by a sparse join."""
    rows, cols, vals = v
    device = vals.device
    ngp = n - nqp
    is_q = rows < nqp
    q_base, q_cols, q_vals = rows[is_q] * ngp, cols[is_q], vals[is_q]
    g_order = torch.argsort(cols[~is_q], stable=True)
    g_rows, g_vals = rows[~is_q][g_order] - nqp, vals[~is_q][g_order]
    g_count = torch.bincount(cols[~is_q], minlength=n)
    per = g_count[q_cols]  # pairs each query entry makes: the gallery entries of its column
    ends = torch.cumsum(per, 0)
    # the gallery entry of pair p (global numbering) is p + delta[its query entry]
    delta = (torch.cumsum(g_count, 0) - g_count)[q_cols] - (ends - per)
    out = torch.zeros(nqp * ngp, dtype=torch.float32, device=device)
    lo = 0
    while lo < per.numel():  # chunks of query entries whose pairs number about _PAIR_CHUNK
        base = int(ends[lo - 1]) if lo else 0
        hi = max(int(torch.searchsorted(ends, base + _PAIR_CHUNK, right=True)), lo + 1)
        cnt = per[lo:hi]
        g = torch.arange(base, base + int(cnt.sum()), device=device) + delta[lo:hi].repeat_interleave(cnt)
        target = q_base[lo:hi].repeat_interleave(cnt) + g_rows[g]
        out.index_add_(0, target, torch.minimum(q_vals[lo:hi].repeat_interleave(cnt), g_vals[g]))
        lo = hi
    return out.view(nqp, ngp)


def _neighbour_table(items: _Items, kmax: int, masked: bool) -> tuple[torch.Tensor, ...]:
    """Neighbours [N, kmax], their distances, row maxima, and the raw query x gallery distance block.

    With masking and at least kmax queries, a gallery item's neighbours are all queries, found in the
    transposed query x gallery block; gallery items are nobody's neighbour, so their V rows stay empty and
    their row maxima are never used (set to 1): the gallery x gallery block is never computed.
    """
    n, nqp = items.n, items.nqp
    from_block = masked and nqp >= kmax
    nbs, nds, maxima = [], [], []
    block = torch.empty(nqp, n - nqp, device=items.feats.device)
    starts = [(s, nqp) for s in range(0, nqp, _ROW_CHUNK)]
    starts += [] if from_block else [(s, n) for s in range(nqp, n, _ROW_CHUNK)]
    for s, end in starts:  # chunks never straddle the query/gallery boundary
        rows = slice(s, min(s + _ROW_CHUNK, end))
        nb, nd, row_max, qg = _neighbours(items, rows, kmax, masked)
        if qg is not None:
            block[rows] = qg
        nbs.append(nb), nds.append(nd), maxima.append(row_max)
    for s in range(0, n - nqp if from_block else 0, _ROW_CHUNK):
        nd, nb = torch.topk(block[:, s : s + _ROW_CHUNK], kmax, dim=0, largest=False, sorted=True)
        nbs.append(nb.t()), nds.append(nd.t()), maxima.append(torch.ones(nb.shape[1], device=nb.device))
    return torch.cat(nbs), torch.cat(nds), torch.cat(maxima), block


def _rerank_items(items: _Items, k1: int, k2: int, lambda_value: float, masked: bool) -> torch.Tensor:
    """Final re-ranked distances [query part, gallery part] for one set of items."""
    n, nqp, kmax = items.n, items.nqp, max(k1 + 1, k2)
    nb, nd, row_max, original = _neighbour_table(items, kmax, masked)
    recip = _reciprocal(nb, k1)
    w = torch.where(recip, torch.exp(-nd[:, : k1 + 1] / row_max[:, None]), 0.0)
    w = w / w.sum(1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    support = nqp if masked and nqp >= kmax else n  # columns V can use: with masking, the query part
    overlap = _jaccard_overlap(_expanded_v(nb, recip, w, k1, k2, support), nqp, n)
    del nb, nd, recip, w
    # final = (1 - lambda) * (1 - S / (2 - S)) + lambda * original, updating the two [nqp, ngp] buffers in place
    original.div_(row_max[:nqp, None]).mul_(lambda_value)
    jaccard = overlap.neg_().div_(overlap.add(2.0)).add_(1.0)  # overlap holds -S, so this is 1 - S / (2 - S)
    return original.add_(jaccard, alpha=1.0 - lambda_value)


def mser_rerank(
    query_feats: Any,
    gallery_feats: Any,
    k1: int = 40,
    k2: int = 20,
    lambda_value: float = 0.3,
    neighbours: str = "query",
    multi_view: str | None = None,
    normalize: bool = True,
) -> Any:
    """Re-ranked distances [Nq, Ng] (lower = closer) from [V, N, D] or [N, D] features; numpy in, numpy out.

    Defaults are SYSU-MM01's; RegDB uses k1=50, k2=10, lambda_value=0.2, neighbours="all". The multi-view
    side is the one whose views differ (`multi_view` forces it); runs on the query features' device.
    """
    if neighbours not in NEIGHBOUR_RULES:
        raise ValueError(f"neighbours must be one of {NEIGHBOUR_RULES}, got {neighbours!r}")
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
    q, g = as_views(query_feats), as_views(gallery_feats)
    g = g.to(q.device)
    q, g = _pick_views(q, g, multi_view)
    if normalize:
        q, g = F.normalize(q, dim=-1), F.normalize(g, dim=-1)
    (vq, nq, _), (vg, ng, _) = q.shape, g.shape
    feats = torch.cat([q.reshape(vq * nq, -1), g.reshape(vg * ng, -1)])
    items = _Items(feats, (feats * feats).sum(1), vq * nq)
    final = _rerank_items(items, k1, k2, lambda_value, masked=neighbours == "query")
    final = final.view(vq, nq, vg, ng).mean(dim=(0, 2))
    return final if isinstance(query_feats, torch.Tensor) else final.cpu().numpy()
