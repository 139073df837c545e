"""MSER re-ranking: time and peak memory for SYSU-MM01 single- and multi-shot (10 trials each), and the
metric effect of computing V and the Jaccard distance in float32 instead of the reference's float16.

Each configuration runs in its own process so that its peak resident memory (ru_maxrss) is its own.
The cost of the Jaccard step grows with how mixed the k-reciprocal neighbourhoods are: noise 1.5 gives
tight identity clusters, 3.0 medium ones, 4.5 the noisy features of bench_eval (a worst case).
Usage: python benchmarks/bench_mser.py [--quick] [--device cpu|cuda] [--noise 1.5 3.0 ...] [--shots 1 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from bench_eval import features, machine, sysu_like  # noqa: E402

from helpers.evaluation import loop_metrics, loop_mser  # noqa: E402
from mcja.evaluation import evaluate_sysu, mser_rerank, rank_metrics  # noqa: E402

VIEW_NOISE = 0.5  # the R, G, B views: the original feature plus a little noise of their own


def visible_views(g: torch.Tensor, seed: int) -> torch.Tensor:
    """Four views [4, N, D] of visible features: the original and three perturbed spectral views."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([g] + [g + VIEW_NOISE * torch.randn(g.shape, generator=gen) for _ in range(3)])


def run_config(shots: int, trials: int, device: str, noise: float) -> dict:
    """One SYSU setting with MSER over `trials` trials, in this process: seconds and peak RSS."""
    rng = np.random.default_rng(0)
    d = sysu_like(rng)
    q = features(rng, d["q_ids"], noise).to(device)
    g = visible_views(features(rng, d["g_ids"], noise), 1).to(device)
    t = time.perf_counter()
    res = evaluate_sysu(q, d["q_ids"], d["q_cams"], g, d["g_ids"], d["g_cams"], d["g_paths"], d["perm"],
                        "all", shots, trials, rerank="mser")
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    peak_gpu = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0
    return {"shots": shots, "trials": trials, "seconds": seconds, "r1": res["r1"], "mAP": res["mAP"],
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "peak_gpu_gib": peak_gpu}


def in_subprocess(shots: int, trials: int, device: str, noise: float) -> dict:
    """run_config in a fresh interpreter (its own peak memory)."""
    out = subprocess.run([sys.executable, __file__, "--child", str(shots), str(trials), "--device", device, "--noise", str(noise)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def float16_effect(rng: np.random.Generator, n_ids: int = 40, nq: int = 400, ng: int = 120, dim: int = 128) -> list[str]:
    """One trial on a smaller set: ours (float32) vs an item-by-item reference loop in float16 and float32."""
    centres = rng.standard_normal((n_ids, dim))
    qids, gids = rng.integers(0, n_ids, nq), np.repeat(np.arange(n_ids), ng // n_ids)
    unit = lambda x: (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)  # noqa: E731
    q = unit(centres[qids] + 2.0 * rng.standard_normal((nq, dim)))
    g0 = centres[gids] + 2.0 * rng.standard_normal((len(gids), dim))
    g = unit(np.stack([g0] + [g0 + 0.5 * rng.standard_normal(g0.shape) for _ in range(3)]))
    qcams, gcams = np.full(nq, 3), np.full(len(gids), 1)
    rows = ["| one trial, %d queries x %d gallery x 4 views | R1 | mAP | mINP | max abs distance diff vs ours |" % (nq, len(gids)),
            "|---|---|---|---|---|"]
    ours = mser_rerank(q[None], g)
    for name, dist in (("ours (float32, vectorized)", ours),
                       ("reference loop, float16 V and Jaccard", loop_mser([q], list(g), 40, 20, 0.3, True, np.float16)),
                       ("reference loop, float32", loop_mser([q], list(g), 40, 20, 0.3, True, np.float32))):
        cmc, m_ap, m_inp = loop_metrics(dist, qids, qcams, gids, gcams)
        r = rank_metrics(dist, qids, qcams, gids, gcams)
        assert abs(r["mAP"] - 100 * m_ap) < 1e-9
        rows.append(f"| {name} | {100 * cmc[0]:.2f} | {100 * m_ap:.3f} | {100 * m_inp:.3f} | {np.abs(dist - ours).max():.2e} |")
    return rows


def main() -> None:
    """Print the timing/memory table and the float16 comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 trials per setting instead of 10")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--noise", type=float, nargs="+", default=[1.5, 3.0], help="feature noise around identity centres (see docstring)")
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_config(args.child[0], args.child[1], args.device, args.noise[0])))
        return
    trials = 2 if args.quick else 10
    print(machine(), f"device: {args.device}\n")
    print("| MSER, SYSU all-search, %d trials | total | per trial | peak RSS | peak GPU | R1 / mAP |" % trials)
    print("|---|---|---|---|---|---|")
    for noise in args.noise:
        for shots in args.shots:
            r = in_subprocess(shots, trials, args.device, noise)
            gpu = f"{r['peak_gpu_gib']:.2f} GiB" if args.device == "cuda" else "-"
            print(f"| noise {noise}, {'single' if shots == 1 else 'multi'}-shot | {r['seconds']:.1f} s | {r['seconds'] / trials:.2f} s "
                  f"| {r['peak_rss_gib']:.2f} GiB | {gpu} | {r['r1']:.2f} / {r['mAP']:.2f} |", flush=True)
    print("\nload average at the end:", ", ".join(f"{x:.1f}" for x in os.getloadavg()), "\n")
    print("\n".join(float16_effect(np.random.default_rng(1))))


if __name__ == "__main__":
    main()
