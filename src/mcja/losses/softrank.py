"""Differentiable soft rank with l2 regularisation (Blondel et al. 2020), vectorized for any device.

The isotonic regression inside is solved without a sequential pool-adjacent-violators loop. With
P the prefix sums of y (points (i, P[i]), i = 0..n) and A[j, l] = mean(y[j..l]) the slope from point
j to point l+1, let gap[k] = min_{j<k} A[j, k-1] - max_{l>=k} A[k, l]. Then gap[k] <= v[k-1] - v[k]
always, with equality where a block starts (there the prefix before k and the suffix from k are
independent isotonic problems whose boundary values are exactly those two terms); elsewhere
v[k-1] = v[k] and gap[k] <= 0. So `gap > 0` is the block structure of PAV that merges equal means
(torchsort does), ties included. Since gap[k] <= y[k-1] - y[k], only points where y drops can start
a block, and the extreme slopes are always reached at such points (block starts of the prefix or
suffix problem), so the O(C^2) work runs over those C points only: none for typical CMR rows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

# Elements of one float64 slope tile: bounds the quadratic work memory to ~3 x 32 MiB for any input size.
TILE_ELEMENTS = 1 << 22
# torchsort's backward splits blocks only where solution values differ by more than this (its
# `partition`); using the same threshold keeps gradients at near-ties identical to the reference.
GRAD_BLOCK_TOL = 1e-9


def pav_gaps(y: Tensor, tile_elements: int = TILE_ELEMENTS) -> Tensor:
    """gap[..., k-1] for k = 1..n-1 (module doc) of rows y [R, n] in float64; a block starts at k iff gap > 0.

    Points where y does not drop get -inf. Memory stays bounded by tiles of `tile_elements`.
    """
    rows, n = y.shape
    y = y.to(torch.float64)
    gaps = y.new_full((rows, max(n - 1, 0)), -math.inf)
    drop = y[:, :-1] > y[:, 1:]
    hard = drop.any(dim=-1).nonzero().squeeze(1)
    if hard.numel() == 0:
        return gaps
    keep = F.pad(drop[hard], (1, 1), value=True)  # the end points 0 and n always take part
    prefix = F.pad(y[hard].cumsum(-1), (1, 0))
    width = int(keep.sum(-1).max())
    pos = torch.argsort((~keep).to(torch.uint8), dim=-1, stable=True)[:, :width]  # kept points first, in order
    valid = keep.gather(-1, pos)
    x, p = pos.to(torch.float64), prefix.gather(-1, pos)
    if width * width <= tile_elements:
        tile, row_chunk = width, max(1, tile_elements // (width * width))
    else:
        tile, row_chunk = max(1, math.isqrt(tile_elements)), 1
    # buffers made once: small allocations between the big tiles fragment the CPU heap (peak RSS 1.6 GB on [128, 4096])
    left_min, right_max = torch.empty_like(p), torch.empty_like(p)
    for r0 in range(0, len(hard), row_chunk):
        chunk = slice(r0, r0 + row_chunk)
        _extreme_slopes(x[chunk], p[chunk], valid[chunk], tile, left_min[chunk], right_max[chunk])
    kept_gaps = left_min - right_max
    inner = valid & (pos > 0) & (pos < n)
    gaps[hard[:, None].expand_as(pos)[inner], pos[inner] - 1] = kept_gaps[inner]
    return gaps


def _extreme_slopes(x: Tensor, p: Tensor, valid: Tensor, tile: int, left_min: Tensor, right_max: Tensor) -> None:
    """For valid points (x, p), ordered by x: min slope from any earlier point and max slope to any later one."""
    left_min.fill_(math.inf)
    right_max.fill_(-math.inf)
    points = x.shape[1]
    for a0 in range(0, points, tile):
        a = slice(a0, a0 + tile)
        for b0 in range(a0, points, tile):  # only tiles that reach above the diagonal (a < b)
            b = slice(b0, b0 + tile)
            span = x[:, None, b] - x[:, a, None]
            slope = (p[:, None, b] - p[:, a, None]).div_(span.clamp(min=1))
            invalid = ~(valid[:, a, None] & valid[:, None, b])
            if b0 == a0:
                invalid |= span <= 0
            torch.maximum(right_max[:, a], slope.masked_fill(invalid, -math.inf).amax(-1), out=right_max[:, a])
            torch.minimum(left_min[:, b], slope.masked_fill_(invalid, math.inf).amin(-2), out=left_min[:, b])


def block_means(values: Tensor, starts: Tensor) -> Tensor:
    """Each element replaced by the mean over its block; blocks are contiguous runs beginning where `starts`."""
    n = values.shape[-1]
    idx = torch.arange(n, device=values.device).expand_as(starts)
    first = torch.where(starts, idx, 0).cummax(-1).values
    ends = torch.cat([starts[:, 1:], torch.ones_like(starts[:, :1])], dim=-1)
    last = torch.where(ends, idx, n - 1).flip(-1).cummin(-1).values.flip(-1)
    # prefix-sum differences in float64 rather than scatter_add: deterministic on every device
    csum = F.pad(values.to(torch.float64).cumsum(-1), (1, 0))
    sums = csum.gather(-1, last + 1) - csum.gather(-1, first)
    return sums / (last - first + 1)


def _output_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else is returned in float32 (ranks up to n need its precision)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class SoftRank(torch.autograd.Function):
    """Autograd function behind `soft_rank`: forward(x, strength), ranks along the last dim."""

    @staticmethod
    def forward(ctx, x: Tensor, strength: float) -> Tensor:  # type: ignore[override]
        n = x.shape[-1]
        theta = x.reshape(-1, n).to(torch.float64) / strength
        s, perm = theta.sort(dim=-1, descending=True, stable=True)
        y = s - torch.arange(n, 0, -1, dtype=torch.float64, device=x.device)
        gaps = pav_gaps(y)
        first = torch.ones(theta.shape[0], 1, dtype=torch.bool, device=x.device)
        value_starts = torch.cat([first, gaps > 0], dim=-1)
        grad_starts = torch.cat([first, gaps > GRAD_BLOCK_TOL], dim=-1)
        ranks = torch.empty_like(s).scatter_(-1, perm, s - block_means(y, value_starts))
        ctx.save_for_backward(perm, grad_starts)
        ctx.strength, ctx.in_dtype = strength, x.dtype
        return ranks.to(_output_dtype(x.dtype)).reshape(x.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        perm, starts = ctx.saved_tensors
        g = grad.reshape(perm.shape).to(torch.float64).gather(-1, perm)
        g = g - block_means(g, starts)
        out = torch.empty_like(g).scatter_(-1, perm, g) / ctx.strength
        return out.to(ctx.in_dtype).reshape(grad.shape), None


def soft_rank(x: Tensor, strength: float = 0.5) -> Tensor:
    """l2-regularised soft rank along the last dim (rank ~1 = smallest); every row sums to n(n+1)/2.

    Works for any leading dims and device; float64 in gives float64 out, other float dtypes give float32.
    """
    if not x.is_floating_point():
        raise TypeError(f"soft_rank needs a floating-point tensor, got {x.dtype}")
    if x.dim() == 0:
        raise ValueError("soft_rank needs at least one dimension to rank along")
    if not strength > 0:
        raise ValueError(f"soft_rank strength must be > 0, got {strength}")
    if x.numel() == 0:
        return x.to(_output_dtype(x.dtype))
    return SoftRank.apply(x, float(strength))
