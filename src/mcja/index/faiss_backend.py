"""Nearest-neighbour search over an index's features: FAISS (flat / ivf / hnsw) or exact torch without FAISS.

Kinds (scores are inner products of L2-normalised features, i.e. cosine similarities):
- flat: exact search (FAISS IndexFlatIP; without FAISS, the same in torch, reading the memory-mapped features
  in chunks);
- ivf: an inverted file whose lists are chosen in a 256-d PCA space (cheap to train and to probe) and which holds
  fast-scan product-quantised codes of the full features (4 bits per 4 dimensions: 256 bytes per 2048-d image,
  scanned with SIMD lookup tables); the top 200 candidates are re-scored exactly from the memory-mapped
  features; `nprobe` is tuned at build time. Measured in benchmarks/README.md against 4-bit scalar codes
  (1 KiB per image: slower to scan), 4 bits per 8 dimensions (recall@10 0.90 at 1M) and PCA-256 codes
  (recall@10 stopped at 0.86);
- hnsw: PCA to 256 dims and an HNSW graph, candidates re-scored as for ivf; `efSearch` tuned at build time
  (its recall is bounded by what the 256-d projection keeps: 0.86 on the benchmark's features).
The approximate kinds' search parameter is the smallest reaching recall@10 >= 0.95 against exact search on a
sample of the index's own items (each item's 10 nearest others); that measured recall is stored.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcja.errors import ConfigError, DatasetError
from mcja.index.features import FeatureFile
from mcja.index.store import DB_NAME

KINDS = ("auto", "flat", "ivf", "hnsw")
APPROXIMATE = ("ivf", "hnsw")
AUTO_FLAT_MAX = 50_000  # above this many images `auto` picks ivf (benchmarks/README.md: flat's latency grows with N)
# A filter leaving at most this many images is searched exactly over them: an approximate index probed for a
# small subset would return too few of it, and exact search over that many is fast anyway.
EXACT_FILTER_MAX = 50_000
TARGET_RECALL = 0.95
PCA_DIM = 256
# Candidates re-scored exactly per query (at least 4 x top-k). ivf's PQ codes rank approximately: at 100k,
# nprobe 128, 50 candidates gave recall@10 0.984, 100 or 200 gave 0.995; 200 leave a margin at 1M, where more
# images crowd each neighbourhood (benchmarks/README.md). The count is stored in the structure's params
# ("candidates"), so a saved index is searched as it was tuned.
REFINE = {"ivf": 200, "hnsw": 50}
PQ_DIMS = 4  # feature dimensions per 4-bit PQ sub-quantizer of ivf (8 ranked too coarsely at 1M: recall 0.90)
# Fewer training images than this get 4-bit scalar codes instead (1 KiB per 2048-d image): PQ's k-means needs at
# least 16 points per sub-quantizer, and such a small index's size does not matter.
PQ_MIN_TRAIN = 1000
INSTALL_HINT = "pip install 'mcja[index]' (or faiss-cpu; faiss-gpu on GPU machines)"
_CHUNK = 32768  # feature rows converted to float32 at once


def faiss_or_none() -> Any:
    """The faiss module, or None when it is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def resolve_kind(kind: str, n: int) -> str:
    """The concrete kind for `kind` and n images; approximate kinds without FAISS are a ConfigError."""
    if kind not in KINDS:
        raise ConfigError(f"--kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    concrete = kind if kind != "auto" else ("flat" if n <= AUTO_FLAT_MAX else "ivf")
    if concrete in APPROXIMATE and faiss_or_none() is None:
        if kind == "auto":
            return "flat"  # exact search still works, only slower: `mcja index build` says which search it got
        raise ConfigError(f"--kind {concrete} needs FAISS, which is not installed: {INSTALL_HINT}")
    return concrete


@dataclass
class Structure:
    """A search structure over (ids, rows) of a FeatureFile: a FAISS index, or None for exact torch search."""

    kind: str
    index: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    file: dict[str, int] | None = None  # the fingerprint of the faiss.index it was read from or written to


class StaleStructure(DatasetError):
    """faiss.index is not the file the index database recorded (a writer's newer one, or a replaced one)."""


def build_structure(feats: FeatureFile, ids: np.ndarray, rows: np.ndarray, kind: str, seed: int = 0) -> Structure:
    """A search structure over the images `ids` whose features are at `rows`; approximate kinds are tuned."""
    faiss = faiss_or_none()
    if faiss is None or len(ids) == 0:
        return Structure("flat")
    dim = feats.shape[1]
    if kind == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    else:
        nlist = max(1, min(int(4 * math.sqrt(len(ids))), len(ids) // 39))
        sample = np.sort(np.random.default_rng(seed).choice(len(rows), min(len(rows), max(40 * nlist, 20000)),
                                                              replace=False))
        index = _trained(faiss, kind, dim, nlist, feats.take(rows[sample]))
    for start in range(0, len(ids), _CHUNK):
        index.add_with_ids(feats.take(rows[start : start + _CHUNK]), ids[start : start + _CHUNK].astype(np.int64))
    structure = Structure(kind, index)
    if kind in APPROXIMATE:
        tune(structure, feats, ids, rows, seed)
    return structure


def _trained(faiss: Any, kind: str, dim: int, nlist: int, sample: np.ndarray) -> Any:
    """A trained, empty ivf or hnsw FAISS index (see the module docstring)."""
    pca = faiss.PCAMatrix(dim, min(PCA_DIM, dim, len(sample)))  # PCA needs at least as many samples as outputs
    pca.train(sample)
    if kind == "hnsw":
        index = faiss.IndexIDMap2(faiss.IndexPreTransform(pca, faiss.IndexHNSWFlat(pca.d_out, 32,
                                                                                  faiss.METRIC_INNER_PRODUCT)))
    else:
        # the coarse quantizer assigns lists in PCA space (k-means too), the codes keep all dimensions
        quantizer = faiss.IndexPreTransform(pca, faiss.IndexFlatIP(pca.d_out))
        if len(sample) >= PQ_MIN_TRAIN:
            index = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, pq_subquantizers(dim), 4,
                                             faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_4bit,
                                                  faiss.METRIC_INNER_PRODUCT)
        index.train(sample)
    # a copy owned by FAISS alone: the Python objects above may be collected
    return faiss.deserialize_index(faiss.serialize_index(index))


def pq_subquantizers(dim: int) -> int:
    """Sub-quantizers of ivf's PQ codes: about one per PQ_DIMS dimensions, a divisor of dim (PQ needs one)."""
    return max(m for m in range(1, max(1, dim // PQ_DIMS) + 1) if dim % m == 0)


def _set_param(structure: Structure, value: int) -> None:
    """Set the approximate kind's search parameter (nprobe / efSearch)."""
    faiss = faiss_or_none()
    if structure.kind == "ivf":
        faiss.extract_index_ivf(structure.index).nprobe = value
        structure.params["nprobe"] = value
    else:
        inner = faiss.downcast_index(faiss.downcast_index(structure.index.index).index)
        inner.hnsw.efSearch = value
        structure.params["efSearch"] = value


def tune(structure: Structure, feats: FeatureFile, ids: np.ndarray, rows: np.ndarray, seed: int = 0,
         samples: int = 200, k: int = 10) -> None:
    """Smallest search parameter with recall@k >= TARGET_RECALL on a sample of the items; stores both."""
    pick = np.random.default_rng(seed + 1).choice(len(ids), min(samples, len(ids)), replace=False)
    queries = feats.take(rows[pick])
    truth = exact_search(feats, ids, rows, queries, k + 1)[1]
    values = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] if structure.kind == "ivf" else [16, 32, 64, 128, 256, 512]
    for value in values:
        _set_param(structure, value)
        found = search_structure(structure, feats, ids, rows, queries, k + 1)[1]
        rec = recall_at(found, truth, ids[pick], k)
        if rec >= TARGET_RECALL:
            break
    structure.params["recall@10"] = round(float(rec), 4)
    structure.params.setdefault("candidates", REFINE[structure.kind])  # what the recall was measured with


def recall_at(found: np.ndarray, truth: np.ndarray, self_ids: np.ndarray, k: int) -> float:
    """Mean fraction of each query's true k nearest others (its own id left out) among the k found."""
    hits = []
    for f, t, me in zip(found, truth, self_ids):
        true_k = [i for i in t if i != me][:k]
        got = set([i for i in f if i != me][:k])
        hits.append(len(got.intersection(true_k)) / max(1, len(true_k)))
    return float(np.mean(hits))


def exact_search(feats: FeatureFile, ids: np.ndarray, rows: np.ndarray, queries: np.ndarray, k: int,
                 allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) [Nq, k] of exact inner-product search in torch, reading features in chunks (ids -1 pad)."""
    if allowed is not None:
        keep = np.isin(ids, allowed)
        ids, rows = ids[keep], rows[keep]
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    best_s = torch.full((len(q), 0), -math.inf)
    best_i = torch.zeros((len(q), 0), dtype=torch.int64)
    for start in range(0, len(ids), _CHUNK):
        block = torch.from_numpy(feats.take(rows[start : start + _CHUNK]))
        s = torch.cat([best_s, q @ block.T], dim=1)
        i = torch.cat([best_i, torch.from_numpy(ids[start : start + _CHUNK].astype(np.int64)).expand(len(q), -1)], 1)
        top = torch.topk(s, min(k, s.shape[1]), dim=1)  # ties: torch order; scores are continuous in practice
        best_s, best_i = top.values, torch.gather(i, 1, top.indices)
    return _pad(best_s.numpy(), best_i.numpy(), k)


def search_structure(structure: Structure, feats: FeatureFile, ids: np.ndarray, rows: np.ndarray,
                     queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) [Nq, k], best first, ids -1 where fewer than k images qualify; `allowed` filters by id."""
    if structure.index is None or (allowed is not None and len(allowed) <= EXACT_FILTER_MAX):
        return exact_search(feats, ids, rows, queries, k, allowed)
    faiss = faiss_or_none()
    q = np.ascontiguousarray(queries, dtype=np.float32)
    fetch = k if structure.kind == "flat" else max(int(structure.params.get("candidates", REFINE[structure.kind])),
                                                   4 * k)
    params = None
    if allowed is not None:
        sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        if structure.kind == "ivf":
            params = faiss.SearchParametersIVF(sel=sel, nprobe=structure.params["nprobe"])
        else:
            params = faiss.SearchParameters(sel=sel)
    fetch += max(0, structure.index.ntotal - len(ids))  # ids it holds beyond `ids` are dropped below
    scores, found = structure.index.search(q, min(fetch, max(1, structure.index.ntotal)), params=params)
    scores, found = _known_only(scores, found, ids)
    if structure.kind == "flat":
        return _pad(scores[:, :k], found[:, :k], k)
    return _rescore(feats, ids, rows, q, found, k)


def _known_only(scores: np.ndarray, found: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Results without the ids that `ids` (ascending) lacks, order kept, -1 after: a search structure written by a
    writer after the reader's snapshot of the database holds ids the snapshot does not (docs/index-format.md)."""
    if len(ids) == 0:
        return scores, np.full_like(found, -1)
    pos = np.minimum(np.searchsorted(ids, found), len(ids) - 1)
    known = (found >= 0) & (ids[pos] == found)
    if known.all():
        return scores, found
    order = np.argsort(~known, axis=1, kind="stable")
    found = np.where(np.take_along_axis(known, order, 1), np.take_along_axis(found, order, 1), -1)
    return np.take_along_axis(scores, order, 1), found


def _rescore(feats: FeatureFile, ids: np.ndarray, rows: np.ndarray, q: np.ndarray, found: np.ndarray,
             k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact scores of each query's candidates (from the feature file), best k kept."""
    flat = found.reshape(-1)
    valid = flat >= 0
    pos = np.searchsorted(ids, flat[valid])
    cand_rows = np.full(flat.shape, -1, dtype=np.int64)
    cand_rows[valid] = rows[pos]
    uniq, inverse = np.unique(cand_rows[valid], return_inverse=True)
    table = feats.take(uniq)  # each candidate read once, even when several queries share it
    vecs = np.zeros((flat.shape[0], q.shape[1]), dtype=np.float32)
    vecs[valid] = table[inverse]
    exact = np.einsum("qcd,qd->qc", vecs.reshape(*found.shape, -1), q)
    exact[found < 0] = -np.inf
    order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
    return _pad(np.take_along_axis(exact, order, 1), np.take_along_axis(found, order, 1), k)


def _pad(scores: np.ndarray, found: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Results widened to k columns (ids -1, scores -inf), with FAISS's -1 entries' scores set to -inf."""
    scores, found = np.asarray(scores, dtype=np.float32), np.asarray(found, dtype=np.int64)
    scores = np.where(found < 0, -np.inf, scores)
    if found.shape[1] < k:
        pad = k - found.shape[1]
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        found = np.pad(found, ((0, 0), (0, pad)), constant_values=-1)
    return scores, found


def save_structure(structure: Structure, path: Path) -> dict[str, int] | None:
    """Write the FAISS index atomically (nothing to write for exact torch search); returns the file's fingerprint
    (bytes, crc32), which the database records beside the rows it holds."""
    from mcja.utils.io import atomic_path

    if structure.index is None:
        path.unlink(missing_ok=True)
        structure.file = None
        return None
    data = faiss_or_none().serialize_index(structure.index)
    with atomic_path(path) as tmp:
        data.tofile(tmp)
    structure.file = _fingerprint(data)
    return structure.file


def _fingerprint(data: np.ndarray) -> dict[str, int]:
    """What identifies a faiss.index file's bytes."""
    return {"bytes": int(data.size), "crc32": zlib.crc32(data)}


def load_structure(path: Path, kind: str, params: dict[str, Any], expect: dict[str, int] | None = None) -> Structure:
    """The structure saved at `path` with its stored parameters; exact torch search when FAISS is missing.
    With `expect` (the fingerprint the database recorded) another file is a StaleStructure, refused unread."""
    faiss = faiss_or_none()
    if faiss is None:
        if kind in APPROXIMATE:
            raise ConfigError(f"this index is {kind}, which needs FAISS, not installed here: {INSTALL_HINT}")
        return Structure("flat")
    if not path.is_file():
        return Structure("flat")  # an index built without FAISS: exact search
    repair = f"run `mcja index repair {path.parent}`"
    data = np.fromfile(path, dtype=np.uint8)  # read once: a writer's rename meanwhile cannot mix two files
    if expect is not None and _fingerprint(data) != expect:
        raise StaleStructure(f"{path}: not the search structure {DB_NAME} records (a writer was interrupted, or the "
                             f"file was replaced): {repair}")
    try:
        structure = Structure(kind, faiss.deserialize_index(data), dict(params), _fingerprint(data))
    except RuntimeError as err:
        raise DatasetError(f"{path}: not a readable FAISS index ({str(err).splitlines()[0][:120]}): {repair}") from None
    for name in ("nprobe", "efSearch"):
        if name in params:
            _set_param(structure, int(params[name]))
    structure.params = dict(params)
    return structure
