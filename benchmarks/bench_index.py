"""Archive-scale search (`mcja index`): build time, index memory, single-query latency p50/p99, batch-of-100
throughput, item and identity recall@10, side by side with today's brute force (full cosine matrix + full
argsort, as `mcja search` scored before the index) and exact FAISS, in the same run.

Features: synthetic 2048-d, L2-normalised, with a ReID-like neighbourhood structure: identities of 2 to 300
images (log-normal sizes, median 20), each image = a shared mean direction + its identity's centre + its
(identity, camera)'s offset + its own noise. The weights are set so the same-id / different-id cosine spread
matches features of the demo's trained ResNet-18 (see benchmarks/README.md), not tight clusters in noise.
Queries are new images of archive identities (fresh noise, any camera), as a real query is.
`--kinds ivf-sq4` adds the ivf of the first release (4-bit scalar codes, 1 KiB per image, 50 candidates re-scored)
for comparison with today's ivf (fast-scan PQ codes, 128 bytes per image, 200 candidates).
Usage: python benchmarks/bench_index.py [--sizes 100000 300000] [--queries 200] [--kinds ivf ivf-sq4 hnsw]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_eval import machine  # noqa: E402

from mcja.index import faiss_backend  # noqa: E402
from mcja.index.faiss_backend import build_structure, exact_search, faiss_or_none, search_structure  # noqa: E402
from mcja.index.features import FeatureFile  # noqa: E402

# Shares of the feature parts, calibrated on the demo model's visible features (benchmarks/README.md): a mean
# direction (different-id cosine ~0.09), the identity (a per-image share: some crops are better than others),
# an (identity, camera) offset, and noise. Centres and noise lean into a low-dimensional subspace, as trained
# features do (their different-id cosines spread widely, not tightly around 0).
MEAN_SHARE, ID_SHARE, CAM_SHARE = 0.09, (0.20, 0.80), 0.10
SUBSPACE, SUBSPACE_SHARE = 8, 0.8
CAMERAS = 4


def identity_sizes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Images per identity (2..300, log-normal, median 20) summing to exactly n."""
    sizes = []
    while sum(sizes) < n:
        sizes.append(int(np.clip(rng.lognormal(np.log(20), 1.0), 2, 300)))
    sizes[-1] -= sum(sizes) - n
    return np.array([s for s in sizes if s > 0])


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class ReidLike:
    """The generator: identity centres and the mean direction, kept; images drawn chunk by chunk."""

    def __init__(self, n: int, dim: int, seed: int = 0) -> None:
        self.rng, self.dim = np.random.default_rng(seed), dim
        self.sizes = identity_sizes(n, self.rng)
        self.labels = np.repeat(np.arange(len(self.sizes)), self.sizes)
        self.basis = np.linalg.qr(self.rng.standard_normal((dim, SUBSPACE)))[0].T.astype(np.float32)  # [r, dim]
        self.mean = unit(self.rng.standard_normal(dim)).astype(np.float32)
        self.centres = self.directions(len(self.sizes), self.rng, SUBSPACE_SHARE)
        self.cams = self.rng.integers(0, CAMERAS, n)

    def directions(self, n: int, rng: np.random.Generator, share: float) -> np.ndarray:
        """n unit vectors with `share` of their variance in the common subspace."""
        low = unit(rng.standard_normal((n, SUBSPACE)).astype(np.float32) @ self.basis)
        iso = unit(rng.standard_normal((n, self.dim)).astype(np.float32))
        return unit(np.sqrt(share) * low + np.sqrt(1 - share) * iso)

    def draw(self, labels: np.ndarray, cams: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Images of identities `labels` on cameras `cams` (float32, L2-normalised)."""
        pair = labels * CAMERAS + cams
        uniq, inverse = np.unique(pair, return_inverse=True)
        # an (identity, camera) offset is a pure function of the pair, so archive and queries share it
        offsets = np.stack([unit(np.random.default_rng([7, int(p)]).standard_normal(self.dim)) for p in uniq])
        noise = self.directions(len(labels), rng, SUBSPACE_SHARE / 2)
        share = rng.uniform(*ID_SHARE, (len(labels), 1)).astype(np.float32)
        x = (np.sqrt(MEAN_SHARE) * self.mean + np.sqrt(share) * self.centres[labels]
             + np.sqrt(CAM_SHARE) * offsets[inverse] + np.sqrt(1 - MEAN_SHARE - share - CAM_SHARE) * noise)
        return unit(x).astype(np.float32)

    def write(self, feats: FeatureFile, chunk: int = 20000) -> None:
        """The archive's images into a float16 feature file, in chunks."""
        for start in range(0, len(self.labels), chunk):
            sl = slice(start, start + chunk)
            feats.append(self.draw(self.labels[sl], self.cams[sl], self.rng)[:, None])

    def queries(self, q: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """q new images of random archive identities (any camera): features and identity labels."""
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, len(self.sizes), q)
        return self.draw(labels, rng.integers(0, CAMERAS, q), rng), labels


def spread(gen: ReidLike, feats: FeatureFile, n: int = 2000) -> str:
    """Same-id / different-id cosine (mean ± std) on a sample, to compare with the trained model's."""
    pick = np.sort(np.random.default_rng(5).choice(len(gen.labels), n, replace=False))
    x, lab = feats.take(pick), gen.labels[pick]
    c = x @ x.T
    same = (lab[:, None] == lab[None]) & ~np.eye(n, dtype=bool)
    diff = lab[:, None] != lab[None]
    return (f"same-id cosine {c[same].mean():.3f} ± {c[same].std():.3f}, different-id {c[diff].mean():.3f} ± "
            f"{c[diff].std():.3f}")


@contextlib.contextmanager
def variant(kind: str):
    """The concrete kind to build; for `ivf-sq4`, ivf with the first release's scalar codes and 50 candidates."""
    if kind != "ivf-sq4":
        yield kind
        return
    saved = faiss_backend.PQ_MIN_TRAIN, dict(faiss_backend.REFINE)
    faiss_backend.PQ_MIN_TRAIN, faiss_backend.REFINE["ivf"] = 2**62, 50
    try:
        yield "ivf"
    finally:
        faiss_backend.PQ_MIN_TRAIN, faiss_backend.REFINE = saved


def latency(fn, queries: np.ndarray, single: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms) of one query at a time over `single` queries, and queries/s in batches of 100."""
    times = []
    for row in queries[:single]:
        t = time.perf_counter()
        fn(row[None])
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    batches = [queries[s : s + 100] for s in range(0, len(queries), 100)]
    for b in batches:
        fn(b)
    qps = sum(len(b) for b in batches) / (time.perf_counter() - t)
    return 1000 * float(np.median(times)), 1000 * float(np.quantile(times, 0.99)), qps


def recalls(found: np.ndarray, truth: np.ndarray, labels: np.ndarray, k: int = 10) -> tuple[float, float]:
    """(item recall@k, identity recall@k): shares of the exact top-k items / of their identities found."""
    item = np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)])
    ident = np.mean([len(set(labels[f[:k][f[:k] >= 0]]) & set(labels[t[:k]])) / len(set(labels[t[:k]]))
                     for f, t in zip(found, truth)])
    return float(item), float(ident)


def brute_force(g: torch.Tensor, q: np.ndarray, k: int = 10) -> np.ndarray:
    """Today's scoring: the full cosine matrix and a full stable argsort (then the top k)."""
    scores = (torch.from_numpy(q) @ g.T).numpy()
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def run_size(n: int, dim: int, n_queries: int, kinds: list[str], brute_max: int, flat_max: int,
             folder: str) -> list[dict]:
    """All rows of the table for one archive size."""
    gen = ReidLike(n, dim)
    feats = FeatureFile(folder, "float16", 1, dim, 0)
    t = time.perf_counter()
    gen.write(feats)
    print(f"# {n:,} items, {len(gen.sizes):,} identities: generated in {time.perf_counter() - t:.0f} s; "
          f"{spread(gen, feats)}", flush=True)
    ids, rows = np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)
    q, _ = gen.queries(n_queries)
    out = []
    truth = exact_search(feats, ids, rows, q, 10)[1]  # chunked over the memory-mapped file: any size fits
    if n <= brute_max:
        t = time.perf_counter()
        g = torch.from_numpy(feats.take(rows))  # today's search holds the gallery as float32
        build = time.perf_counter() - t
        p50, p99, qps = latency(lambda x: brute_force(g, x), q, 50)
        item, ident = recalls(ids[brute_force(g, q)], truth, gen.labels)
        out.append(dict(n=n, method="brute force (matrix + argsort)", build=build, memory=g.numel() * 4,
                        p50=p50, p99=p99, qps=qps, item=item, ident=ident, note=""))
        del g
        gc.collect()
    if n <= flat_max:
        t = time.perf_counter()
        exact = build_structure(feats, ids, rows, "flat")
        build = time.perf_counter() - t
        p50, p99, qps = latency(lambda x: search_structure(exact, feats, ids, rows, x, 10), q, 200)
        item, ident = recalls(search_structure(exact, feats, ids, rows, q, 10)[1], truth, gen.labels)
        out.append(dict(n=n, method="exact FAISS (flat)", build=build, memory=exact.index.ntotal * dim * 4, p50=p50,
                        p99=p99, qps=qps, item=item, ident=ident, note=""))
        del exact
        gc.collect()
    for kind in kinds:
        t = time.perf_counter()
        with variant(kind) as concrete:
            s = build_structure(feats, ids, rows, concrete)
        build = time.perf_counter() - t
        p50, p99, qps = latency(lambda x, s=s: search_structure(s, feats, ids, rows, x, 10), q, 200)  # bound: `del s` below
        item, ident = recalls(search_structure(s, feats, ids, rows, q, 10)[1], truth, gen.labels)
        mem = len(faiss_or_none().serialize_index(s.index))
        note = ", ".join(f"{k} {v}" for k, v in s.params.items())
        out.append(dict(n=n, method=f"mcja index {kind}", build=build, memory=mem, p50=p50, p99=p99, qps=qps,
                        item=item, ident=ident, note=note))
        del s
        gc.collect()
    return out


def table(rows: list[dict]) -> str:
    """The measured rows as a markdown table."""
    lines = ["| items | method | build | index memory | p50 / query | p99 / query | batch-100 queries/s | "
             "item recall@10 | identity recall@10 | tuned (build-time recall) |", "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['method']} | {r['build']:.1f} s | {r['memory'] / 2**20:,.0f} MiB | "
                     f"{r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['qps']:,.0f} | {r['item']:.3f} | {r['ident']:.3f} | "
                     f"{r['note']} |")
    return "\n".join(lines)


def main() -> None:
    """Run the sizes asked for and print the table after each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--kinds", nargs="+", default=["ivf"], choices=["ivf", "ivf-sq4", "hnsw"])
    parser.add_argument("--brute-max", type=int, default=1_000_000, help="largest size run with brute force")
    parser.add_argument("--flat-max", type=int, default=1_000_000, help="largest size run with exact FAISS")
    args = parser.parse_args()
    if faiss_or_none() is None:
        raise SystemExit("bench_index needs FAISS: pip install 'mcja[index]'")
    print(machine(), f"faiss {faiss_or_none().__version__} ({faiss_or_none().omp_get_max_threads()} threads)")
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench_index_") as folder:
            rows += run_size(n, args.dim, args.queries, args.kinds, args.brute_max, args.flat_max, folder)
        print(table(rows), flush=True)
    print("index memory: the structure held in RAM (FAISS index, or the float32 matrix); mcja index also reads "
          "the float16 feature file (memory-mapped, 4 KiB per item at 2048-d) for the re-scored candidates.")


if __name__ == "__main__":
    main()
