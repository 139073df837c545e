"""Soft rank and CMR loss, forward + backward: our vectorized soft rank vs a per-row sequential PAV reference.

Run: python benchmarks/bench_cmr.py [--repeats N] [--threads T] [--large]. Prints a markdown table naming the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from mcja.losses import CMRLoss, soft_rank


def _pav_starts(y: list[float]) -> list[int]:
    """Start index of each block of the non-increasing isotonic fit of y (pools equal means, like torchsort)."""
    starts, sums, counts = [], [], []
    for i, value in enumerate(y):
        starts.append(i), sums.append(value), counts.append(1)
        while len(sums) > 1 and sums[-2] * counts[-1] <= sums[-1] * counts[-2]:
            starts.pop()
            total, count = sums.pop(), counts.pop()
            sums[-1] += total
            counts[-1] += count
    return starts


def _row_block_means(row: torch.Tensor, starts: list[int]) -> torch.Tensor:
    """Block means of one row, one Python step per block."""
    out = torch.empty_like(row)
    for begin, end in zip(starts, starts[1:] + [row.numel()]):
        out[begin:end] = row[begin:end].mean()
    return out


class RowLoopSoftRank(torch.autograd.Function):
    """The straightforward reference: one sequential PAV per row, forward and backward (torchsort's structure)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: float) -> torch.Tensor:  # type: ignore[override]
        s, perm = (x.double() / strength).sort(dim=-1, descending=True)
        n = x.shape[-1]
        sorted_ranks, all_starts = torch.empty_like(s), []
        for r, row in enumerate(s):
            y = row - torch.arange(n, 0, -1, dtype=torch.float64)
            all_starts.append(_pav_starts(y.tolist()))
            sorted_ranks[r] = row - _row_block_means(y, all_starts[-1])
        ctx.save_for_backward(perm)
        ctx.starts, ctx.strength = all_starts, strength
        return torch.empty_like(s).scatter_(-1, perm, sorted_ranks).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (perm,) = ctx.saved_tensors
        g = grad.double().gather(-1, perm)
        out = torch.stack([row - _row_block_means(row, starts) for row, starts in zip(g, ctx.starts)])
        return torch.empty_like(out).scatter_(-1, perm, out).div(ctx.strength).to(grad.dtype), None


def reference_cmr(embeddings: torch.Tensor, ids: torch.Tensor, modalities: torch.Tensor, strength: float = 0.5,
                  rank: Callable = RowLoopSoftRank.apply):
    """The authors' per-modality loop (boolean masks, broadcast cosine, F.l1_loss), by default on the row-loop soft rank."""
    losses = []
    for m in torch.unique(modalities):
        q, g = modalities == m, modalities != m
        match = ids[q][:, None] == ids[g][None, :]
        usable = (match.sum(1) > 0) & (match.sum(1) < int(g.sum()))
        if not usable.any():
            continue
        cos = F.cosine_similarity(embeddings[q][usable][:, None, :], embeddings[g][None, :, :], dim=-1)
        ranks = rank((1 - cos) / 2, strength)
        target = torch.where(match[usable], 1.0, float(g.sum()))
        losses.append(F.l1_loss(ranks, target))
    return torch.stack(losses).mean()


def _time(step: Callable[[], tuple[torch.Tensor, torch.Tensor]], repeats: int) -> tuple[float, tuple]:
    """Median seconds of one forward + backward, and the (output, input grad) of the last run."""
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _fwd_bwd(fn: Callable, x: torch.Tensor, *args) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    def step():
        leaf = x.detach().requires_grad_()
        out = fn(leaf, *args)
        out.sum().backward()
        return out.detach(), leaf.grad
    return step


def _pk_batch(p: int, k: int, dim: int, generator: torch.Generator):
    ids = torch.arange(p).repeat_interleave(k)
    modalities = (torch.rand(p * k, generator=generator) < 0.5).long()
    embeddings = torch.randn(p, dim, generator=generator)[ids] + 2 * torch.randn(p * k, dim, generator=generator)
    return embeddings, ids, modalities


def _cases(large: bool, generator: torch.Generator):
    """(name, strength, ours step, reference step or None)."""
    emb, ids, mods = _pk_batch(8, 16, 2048, generator)
    yield ("CMR, PK 8x16, D=2048", 0.5, _fwd_bwd(CMRLoss(0.5), emb, ids, mods),
           _fwd_bwd(reference_cmr, emb, ids, mods))
    for shape in ((128, 64), (128, 1024)):
        x = torch.randn(shape, generator=generator)
        for strength in (0.5, 0.01):  # 0.5: few blocks; 0.01: many (the quadratic part does real work)
            yield (f"soft rank [{shape[0]}, {shape[1]}]", strength, _fwd_bwd(soft_rank, x, strength),
                   _fwd_bwd(RowLoopSoftRank.apply, x, strength))
    if large:
        x = torch.randn(128, 4096, generator=generator)
        yield "soft rank [128, 4096]", 0.001, _fwd_bwd(soft_rank, x, 0.001), None


def _machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    return f"{cpu}, {os.cpu_count()} cores visible, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="add soft rank on [128, 4096] (about a minute)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (1 is steadier on a busy machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    print(f"Machine: {_machine()}\n")
    print("| case | strength | ours (ms) | per-row PAV reference (ms) | speed-up | max abs diff (value / grad) |")
    print("|---|---|---|---|---|---|")
    for name, strength, ours_step, ref_step in _cases(args.large, generator):
        ours_s, (ours_out, ours_grad) = _time(ours_step, args.repeats)
        if ref_step is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"| {name} | {strength} | {ours_s * 1e3:.1f} | - | - | peak RSS {peak:.0f} MiB |")
            continue
        ref_s, (ref_out, ref_grad) = _time(ref_step, args.repeats)
        diff = f"{(ours_out.double() - ref_out.double()).abs().max():.1e} / {(ours_grad - ref_grad).abs().max():.1e}"
        print(f"| {name} | {strength} | {ours_s * 1e3:.1f} | {ref_s * 1e3:.1f} | {ref_s / ours_s:.1f}x | {diff} |")


if __name__ == "__main__":
    main()
