"""Search structures on synthetic features: flat == brute force, approximate kinds reach their stored recall,
exact torch search without FAISS, and a clear hint for approximate kinds when FAISS is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from mcja.errors import ConfigError
from mcja.index.faiss_backend import REFINE, build_structure, exact_search, load_structure, pq_subquantizers, resolve_kind, search_structure
from mcja.index.features import FeatureFile


def clustered(n_ids: int, dim: int, seed: int = 0, spread: float = 0.9) -> np.ndarray:
    """L2-normalised features: identities of 1..40 images around random centres, noise comparable to the centre."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 41, n_ids)
    centres = rng.standard_normal((n_ids, dim))
    x = np.repeat(centres, sizes, axis=0) + spread * rng.standard_normal((sizes.sum(), dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def feature_file(tmp_path, x: np.ndarray, dtype: str = "float32") -> FeatureFile:
    feats = FeatureFile(tmp_path, dtype, 1, x.shape[1], 0)
    feats.append(x[:, None])
    return feats


def brute_force(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: the full score matrix and a full sort, one query at a time."""
    scores, found = [], []
    for row in q:
        s = x @ row
        order = np.argsort(-s, kind="stable")[:k]
        scores.append(s[order])
        found.append(ids[order])
    return np.array(scores), np.array(found)


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


@pytest.mark.parametrize("use_faiss", [True, False])
def test_flat_top_k_equals_brute_force(tmp_path, monkeypatch, use_faiss):
    if use_faiss:
        pytest.importorskip("faiss")
    else:
        monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now fails: exact search in torch
    x = clustered(60, 32)
    ids = np.arange(len(x), dtype=np.int64) * 7 + 3  # sparse, like ids after deletions
    rows = np.arange(len(x))[::-1].copy()  # rows in another order than ids
    feats = feature_file(tmp_path, x[::-1].copy())  # so row r holds x[len - 1 - r]
    structure = build_structure(feats, ids, rows, "flat")
    assert (structure.index is not None) == use_faiss
    q = clustered(5, 32, seed=9)
    scores, found = search_structure(structure, feats, ids, rows, q, 10)
    ref_scores, ref_found = brute_force(x, ids, q, 10)
    np.testing.assert_array_equal(found, ref_found)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    # a filter keeps only the allowed ids, still in exact order
    allowed = ids[::3]
    scores, found = search_structure(structure, feats, ids, rows, q, 4, allowed)
    keep = np.isin(ids, allowed)
    np.testing.assert_array_equal(found, brute_force(x[keep], ids[keep], q, 4)[1])


def test_fewer_images_than_k_pads_with_minus_one(tmp_path):
    x = clustered(1, 16)[:3]
    feats = feature_file(tmp_path, x)
    ids, rows = np.array([5, 6, 7]), np.arange(3)
    scores, found = exact_search(feats, ids, rows, x[:1], 5)
    assert found[0, 3:].tolist() == [-1, -1] and np.isneginf(scores[0, 3:]).all()
    assert sorted(found[0, :3].tolist()) == [5, 6, 7]


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_reaches_its_stored_recall(tmp_path, kind):
    pytest.importorskip("faiss")
    x = clustered(400, 64, seed=1)
    n = len(x)
    ids, rows = np.arange(n, dtype=np.int64), np.arange(n)
    feats = feature_file(tmp_path, x, "float16")
    structure = build_structure(feats, ids, rows, kind, seed=0)
    stored = structure.params["recall@10"]
    assert stored >= 0.95, structure.params
    # fresh queries (not the tuning sample): each item's 10 nearest others, brute force as the reference
    pick = np.random.default_rng(123).choice(n, 300, replace=False)
    x16 = feats.take(rows)  # what is stored (float16), so the reference sees the same numbers
    truth = brute_force(x16, ids, x16[pick], 11)[1][:, 1:]
    found = search_structure(structure, feats, ids, rows, x16[pick], 11)[1][:, 1:]
    assert recall(found, truth, 10) >= stored - 0.03
    # a filter to a subset (here the even ids) is answered exactly over that subset
    allowed = ids[::2]
    got = search_structure(structure, feats, ids, rows, x16[pick[:20]], 10, allowed)[1]
    np.testing.assert_array_equal(got, brute_force(x16[::2], allowed, x16[pick[:20]], 10)[1])


def test_without_faiss_exact_kinds_work_and_approximate_ones_say_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    assert resolve_kind("flat", 10**6) == "flat"
    assert resolve_kind("auto", 10**6) == "flat"  # still searchable, exactly
    for kind in ("ivf", "hnsw"):
        with pytest.raises(ConfigError, match=r"pip install 'mcja\[index\]'"):
            resolve_kind(kind, 10)
    with pytest.raises(ConfigError, match="--kind"):
        resolve_kind("lsh", 10)


@pytest.mark.parametrize("dim, expected", [(2048, 512), (512, 128), (100, 25), (13, 1), (4, 1)])
def test_pq_subquantizers_divide_the_dimension(dim, expected):
    # hand-derived: the largest divisor of dim that is at most dim // 4 (at least 1)
    assert pq_subquantizers(dim) == expected


def test_ivf_holds_fast_scan_pq_codes_and_stores_its_candidate_count(tmp_path):
    faiss = pytest.importorskip("faiss")
    x = clustered(300, 64, seed=2)
    ids, rows = np.arange(len(x), dtype=np.int64), np.arange(len(x))
    feats = feature_file(tmp_path, x, "float16")
    structure = build_structure(feats, ids, rows, "ivf")
    ivf = faiss.extract_index_ivf(structure.index)
    assert isinstance(faiss.downcast_index(ivf), faiss.IndexIVFPQFastScan)
    assert ivf.code_size == 64 // 8  # 4 bits per 4 dimensions
    assert structure.params["candidates"] == REFINE["ivf"]
    assert list(structure.params)[0] == "nprobe"  # the build prints "FAISS ivf (nprobe ..."
    # updated in place as `mcja index update` does: a removed id is gone, a re-added one found first again
    structure.index.remove_ids(faiss.IDSelectorBatch(np.array([0, 1], dtype=np.int64)))
    found = search_structure(structure, feats, ids, rows, feats.take(rows[:2]), 10)[1]
    assert not np.isin([0, 1], found).any()
    structure.index.add_with_ids(feats.take(rows[:1]), ids[:1])
    assert search_structure(structure, feats, ids, rows, feats.take(rows[:1]), 10)[1][0, 0] == 0


def test_an_ivf_index_saved_with_scalar_codes_is_still_searched(tmp_path):
    """Indexes built before the PQ codes (4-bit scalar codes, no stored candidate count) load and search."""
    faiss = pytest.importorskip("faiss")
    x = clustered(100, 32, seed=3)
    ids, rows = np.arange(len(x), dtype=np.int64) * 2 + 1, np.arange(len(x))
    feats = feature_file(tmp_path, x, "float16")
    old = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(32), 32, 8, faiss.ScalarQuantizer.QT_4bit,
                                        faiss.METRIC_INNER_PRODUCT)
    old.train(x)
    old.add_with_ids(x, ids)
    faiss.write_index(old, str(tmp_path / "faiss.index"))
    structure = load_structure(tmp_path / "faiss.index", "ivf", {"nprobe": 8, "recall@10": 1.0})
    q = clustered(5, 32, seed=4)
    x16 = feats.take(rows)
    # every list probed and candidates re-scored exactly from the feature file: brute force's top 10
    np.testing.assert_array_equal(search_structure(structure, feats, ids, rows, q, 10)[1],
                                  brute_force(x16, ids, q, 10)[1])
