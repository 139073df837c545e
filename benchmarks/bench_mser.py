"""MSER re-ranking: time and peak memory for SYSU-MM01 single- and multi-shot (10 trials each), the Jaccard join
chosen per V column ("auto") side by side with every column joined densely (the former implementation, "dense"),
where each join wins by column fill, and the metric effect of float32 instead of the reference's float16.

Each configuration runs in its own process so that its peak resident memory (ru_maxrss) is its own.
The cost of the Jaccard step grows with how mixed the k-reciprocal neighbourhoods are: noise 1.5 gives
tight identity clusters, 3.0 medium ones, 4.5 the noisy features of bench_eval (a worst case).
Usage: python benchmarks/bench_mser.py [--quick] [--device cpu|cuda] [--noise 1.5 3.0 ...] [--shots 1 10]
       [--joins dense auto] [--no-crossover]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from bench_eval import features, machine, sysu_like  # noqa: E402

from helpers.evaluation import loop_metrics, loop_mser  # noqa: E402
from mcja.evaluation import MserReranker, evaluate_sysu, mser_rerank, rank_metrics  # noqa: E402
from mcja.evaluation.mser import _DENSE_SHARE, _jaccard_overlap  # noqa: E402

VIEW_NOISE = 0.5  # the R, G, B views: the original feature plus a little noise of their own


def visible_views(g: torch.Tensor, seed: int) -> torch.Tensor:
    """Four views [4, N, D] of visible features: the original and three perturbed spectral views."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([g] + [g + VIEW_NOISE * torch.randn(g.shape, generator=gen) for _ in range(3)])


def keep_first(path: str) -> None:
    """Save the first re-ranked distance matrix of this process (its first trial) to `path`, to compare the joins."""
    rerank = MserReranker.rerank

    def first(self: MserReranker, subset: object = None) -> torch.Tensor:
        out = rerank(self, subset)
        if not os.path.exists(path):
            np.save(path, out.cpu().numpy())
        return out

    MserReranker.rerank = first


def run_config(shots: int, trials: int, device: str, noise: float, jaccard: str, save: str) -> dict:
    """One SYSU setting with MSER over `trials` trials, in this process: seconds and peak RSS."""
    rng = np.random.default_rng(0)
    d = sysu_like(rng)
    q = features(rng, d["q_ids"], noise).to(device)
    g = visible_views(features(rng, d["g_ids"], noise), 1).to(device)
    keep_first(save)
    t = time.perf_counter()
    res = evaluate_sysu(q, d["q_ids"], d["q_cams"], g, d["g_ids"], d["g_cams"], d["g_paths"], d["perm"],
                        "all", shots, trials, rerank="mser", jaccard=jaccard)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    peak_gpu = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0
    return {"shots": shots, "trials": trials, "seconds": seconds, "r1": res["r1"], "mAP": res["mAP"], "mINP": res["mINP"],
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "peak_gpu_gib": peak_gpu}


def in_subprocess(shots: int, trials: int, device: str, noise: float, jaccard: str, save: str) -> dict:
    """run_config in a fresh interpreter (its own peak memory)."""
    out = subprocess.run([sys.executable, __file__, "--child", str(shots), str(trials), "--device", device, "--noise", str(noise),
                          "--joins", jaccard, "--save", save], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def random_overlap_input(rng: np.random.Generator, nqp: int, items: int, views: int, fill: float) -> tuple:
    """A Jaccard join input shaped like MSER's (CSR E, query rows first, gallery rows view-major): each row holds a
    random `fill` share of the columns; the views of one gallery item share their columns (as MSER's views mostly do)."""
    n_cols = nqp
    q = (rng.random((nqp, n_cols)) < fill) * rng.random((nqp, n_cols))
    support = rng.random((items, n_cols)) < fill
    g = np.concatenate([support * rng.random((items, n_cols)) for _ in range(views)])
    dense = torch.from_numpy(np.concatenate([q, g]).astype(np.float32))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        m = dense.to_sparse_csr()
    return (m.crow_indices(), m.col_indices(), m.values()), n_cols


def join_crossover(quick: bool) -> list[str]:
    """Seconds of the dense and the sparse join by the share of the gallery each V column holds (its fill)."""
    nqp, items = (600, 600) if quick else (1000, 1000)
    rows = [f"| Jaccard join, {nqp} query rows x {items} items x 4 views, column fill | dense | sparse | dense / sparse |",
            "|---|---:|---:|---:|"]
    for fill in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7):
        e, n_cols = random_overlap_input(np.random.default_rng(int(fill * 100)), nqp, items, 4, fill)
        t = {}
        for join in ("dense", "sparse", "sparse", "dense"):  # each twice, alternating; the faster one counts
            start = time.perf_counter()
            _jaccard_overlap(e, nqp, n_cols, join, 4)
            t[join] = min(t.get(join, np.inf), time.perf_counter() - start)
        rows.append(f"| {fill:.2f} | {t['dense']:.3f} s | {t['sparse']:.3f} s | {t['dense'] / t['sparse']:.2f} |")
    rows.append(f"\n(\"auto\" joins a column densely above a fill of {_DENSE_SHARE:g}.)")
    return rows


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
    """Print the timing/memory table (each join), where each join wins, and the float16 comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 trials per setting instead of 10")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--noise", type=float, nargs="+", default=[1.5, 3.0], help="feature noise around identity centres (see docstring)")
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--joins", nargs="+", default=["dense", "auto"], choices=["dense", "sparse", "auto"],
                    help="Jaccard joins to time, each in its own process (dense: the former implementation)")
    ap.add_argument("--no-crossover", action="store_true", help="skip the dense vs sparse join sweep by column fill")
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_config(args.child[0], args.child[1], args.device, args.noise[0], args.joins[0], args.save)))
        return
    trials = 2 if args.quick else 10
    print(machine(), f"device: {args.device}\n")
    print(f"| MSER, SYSU all-search, {trials} trials | join | total | per trial | peak RSS | peak GPU | R1 / mAP / mINP "
          f"| vs {args.joins[0]}: speed-up, max abs distance diff (trial 1) |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for noise in args.noise:
            for shots in args.shots:
                for join in args.joins:
                    save = os.path.join(tmp, f"{noise}-{shots}-{join}.npy")
                    r = in_subprocess(shots, trials, args.device, noise, join, save)
                    base = os.path.join(tmp, f"{noise}-{shots}-{args.joins[0]}.npy")
                    if join == args.joins[0]:
                        first = r["seconds"]
                    diff = np.abs(np.load(save) - np.load(base)).max()
                    gpu = f"{r['peak_gpu_gib']:.2f} GiB" if args.device == "cuda" else "-"
                    print(f"| noise {noise}, {'single' if shots == 1 else 'multi'}-shot | {join} | {r['seconds']:.1f} s "
                          f"| {r['seconds'] / trials:.2f} s | {r['peak_rss_gib']:.2f} GiB | {gpu} "
                          f"| {r['r1']:.2f} / {r['mAP']:.2f} / {r['mINP']:.2f} | {first / r['seconds']:.2f}x, {diff:.1e} |", flush=True)
    print("\nload average at the end:", ", ".join(f"{x:.1f}" for x in os.getloadavg()), "\n")
    if not args.no_crossover:
        print("\n".join(join_crossover(args.quick)), "\n")
    print("\n".join(float16_effect(np.random.default_rng(1))))


if __name__ == "__main__":
    main()
