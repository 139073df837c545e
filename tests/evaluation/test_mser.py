"""MSER re-ranking: equality with an item-by-item reference re-implementation, and properties."""

import numpy as np
import pytest
import torch

import mcja.evaluation.mser as mser_mod
from helpers.evaluation import loop_mser
from mcja.evaluation import evaluate_pair, mser_rerank
from mcja.evaluation.mser import MserReranker


def _unit(rng, *shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# (nq, ng, views, multi-view side, k1, k2): later cases have fewer queries than k1 + 1, k2 = 1, and fewer
# items in all than k1 + 1 (the reference's slices then just stop at the last item)
CASES = [(30, 20, 4, "gallery", 6, 4), (25, 30, 3, "query", 8, 3), (5, 30, 4, "gallery", 8, 3), (30, 20, 4, "gallery", 6, 1),
         (3, 4, 2, "gallery", 20, 15)]


@pytest.mark.parametrize("neighbours", ["query", "all"])
@pytest.mark.parametrize("nq,ng,views,side,k1,k2", CASES)
def test_matches_reference_reimplementation(nq, ng, views, side, k1, k2, neighbours):
    rng = np.random.default_rng(nq + ng + k2)
    q = _unit(rng, views if side == "query" else 1, nq, 16)
    g = _unit(rng, views if side == "gallery" else 1, ng, 16)
    ours = mser_rerank(q, g, k1, k2, 0.3, neighbours)
    masked = neighbours == "query"
    assert ours.shape == (nq, ng) and isinstance(ours, np.ndarray)
    np.testing.assert_allclose(ours, loop_mser(list(q), list(g), k1, k2, 0.3, masked, np.float32), atol=2e-6)
    # the reference keeps V and the Jaccard distance in float16
    np.testing.assert_allclose(ours, loop_mser(list(q), list(g), k1, k2, 0.3, masked, np.float16), atol=3e-3)


def test_chunking_does_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(1)
    q, g = _unit(rng, 1, 40, 8), _unit(rng, 4, 25, 8)
    expected = mser_rerank(q, g, 7, 5, 0.3, "all")
    monkeypatch.setattr(mser_mod, "_ROW_CHUNK", 16)
    monkeypatch.setattr(mser_mod, "_JOIN_CHUNK", 50)
    np.testing.assert_allclose(mser_rerank(q, g, 7, 5, 0.3, "all"), expected, atol=1e-6)
    np.testing.assert_allclose(mser_rerank(q, g, 7, 5, 0.3, "query"), loop_mser(list(q), list(g), 7, 5, 0.3, True, np.float32), atol=2e-6)


def test_lambda_one_gives_the_plain_ranking_and_view_averaging():
    rng = np.random.default_rng(2)
    q, g = _unit(rng, 1, 20, 8), _unit(rng, 1, 15, 8)
    final = mser_rerank(q, g, 5, 3, lambda_value=1.0)
    cos = q[0] @ g[0].T
    np.testing.assert_array_equal(np.argsort(final, 1, kind="stable"), np.argsort(-cos, 1, kind="stable"))
    # gallery side with 3 views: lambda = 1 leaves the mean over views of distance / row maximum
    gv = _unit(rng, 3, 15, 8)
    items = np.concatenate([q[0], *gv])
    d = ((items[:, None] - items[None]) ** 2).sum(-1)
    expected = np.mean([d[:20, 20 + 15 * v : 35 + 15 * v] for v in range(3)], 0) / d[:20].max(1, keepdims=True)
    np.testing.assert_allclose(mser_rerank(q, gv, 5, 3, 1.0), expected, atol=1e-5)
    # query side with 3 views: averaged over query views, each view row-normalised on its own
    qv = _unit(rng, 3, 10, 8)
    items = np.concatenate([*qv, g[0]])
    d = ((items[:, None] - items[None]) ** 2).sum(-1)
    rows = d[:30] / d[:30].max(1, keepdims=True)
    np.testing.assert_allclose(mser_rerank(qv, g, 5, 3, 1.0), rows[:, 30:].reshape(3, 10, 15).mean(0), atol=1e-5)


def test_identical_views_collapse_and_inputs_untouched():
    rng = np.random.default_rng(4)
    q1, g = _unit(rng, 1, 20, 8), _unit(rng, 4, 12, 8)
    q4 = np.repeat(q1, 4, axis=0)  # infrared side given as 4 identical views
    before = (q4.copy(), g.copy())
    np.testing.assert_allclose(mser_rerank(q4, g, 5, 3), mser_rerank(q1[0], g, 5, 3), atol=1e-7)
    np.testing.assert_array_equal(q4, before[0])
    np.testing.assert_array_equal(g, before[1])
    with pytest.raises(ValueError, match="multi_view"):
        mser_rerank(_unit(rng, 2, 20, 8), g, 5, 3)
    out = mser_rerank(torch.from_numpy(q1), torch.from_numpy(g), 5, 3)
    assert isinstance(out, torch.Tensor) and out.shape == (20, 12)


def test_evaluate_pair_with_mser():
    rng = np.random.default_rng(6)
    centers = rng.standard_normal((6, 8))
    qids, gids = rng.integers(0, 6, 30), np.repeat(np.arange(6), 4)
    q = (centers[qids] + rng.standard_normal((30, 8))).astype(np.float32)
    g = np.stack([centers[gids] + rng.standard_normal((24, 8)) for _ in range(4)]).astype(np.float32)
    plain = evaluate_pair(q, qids, np.full(30, 3), g, gids, np.full(24, 1))
    rer = evaluate_pair(q, qids, np.full(30, 3), g, gids, np.full(24, 1), rerank="mser", k1=6, k2=3)
    assert set(rer) == set(plain) and 0 <= rer["mAP"] <= 100
    with pytest.raises(TypeError):
        evaluate_pair(q, qids, np.full(30, 3), g, gids, np.full(24, 1), k1=6)


@pytest.mark.parametrize("neighbours,k2", [("query", 4), ("query", 1), ("all", 4)])
def test_gallery_subsets_match_reference(neighbours, k2):
    # the shared query side (neighbours from the queries) must give what re-ranking each subset alone gives
    rng = np.random.default_rng(11)
    q, g = _unit(rng, 1, 40, 16), _unit(rng, 4, 50, 16)
    reranker = MserReranker(q, g, 7, k2, 0.3, neighbours)
    assert reranker.shared == (neighbours == "query")
    for subset in (np.arange(50), np.sort(rng.choice(50, 17, replace=False)), np.array([3])):
        expected = loop_mser(list(q), list(g[:, subset]), 7, k2, 0.3, neighbours == "query", np.float32)
        np.testing.assert_allclose(reranker.rerank(subset).numpy(), expected, atol=2e-6)


def test_dense_and_sparse_join_agree(monkeypatch):
    # every V column joined densely, then every one sparsely: both must give the reference
    rng = np.random.default_rng(12)
    q, g = _unit(rng, 1, 40, 8), _unit(rng, 4, 30, 8)
    expected = loop_mser(list(q), list(g), 7, 5, 0.3, True, np.float32)
    for share in (0.0, 2.0):
        monkeypatch.setattr(mser_mod, "_DENSE_SHARE", share)
        for neighbours in ("query", "all"):
            ours = mser_rerank(q, g, 7, 5, 0.3, neighbours)
            np.testing.assert_allclose(ours, loop_mser(list(q), list(g), 7, 5, 0.3, neighbours == "query", np.float32), atol=2e-6)
        np.testing.assert_allclose(mser_rerank(q, g, 7, 5, 0.3), expected, atol=2e-6)


def _random_e(rng, nqp, ngp, n_cols, fill, ties):
    """A random E (query rows first) as CSR parts and as a dense array, with the edge cases the joins must handle:
    a query row and a gallery row with a single entry, an empty query row, a column no gallery row has, and (ties)
    values on a coarse grid, so that many query and gallery entries are equal."""
    dense = np.where(rng.random((nqp + ngp, n_cols)) < fill, rng.random((nqp + ngp, n_cols)) + 0.01, 0.0)
    if ties:
        dense = np.ceil(dense * 4) / 4
    dense[0] = 0
    dense[0, 1] = dense[nqp + 1, 1] = 0.5  # query row 0 has one entry; its column meets a gallery row ...
    dense[nqp] = 0
    dense[nqp, 2] = 0.25  # ... and gallery row 0 has one entry
    dense[1] = 0  # an empty query row
    dense[nqp:, 3] = 0  # a column without gallery entries
    dense = dense.astype(np.float32)
    m = torch.from_numpy(dense).to_sparse_csr()
    return (m.crow_indices(), m.col_indices(), m.values()), dense


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("tiny", [False, True])
@pytest.mark.parametrize("views", [1, 2, 3, 4])
@pytest.mark.parametrize("fill,ties", [(0.05, False), (0.6, False), (0.6, True)])
def test_jaccard_joins_match_the_definition(monkeypatch, fill, ties, views, tiny):
    # S[i, j] = sum_k min(E[i, k], E[nqp + j, k]) from the dense definition; every join (both forced, and the
    # automatic choice per column) must give it, with pieces, slices and row groups forced small when `tiny`
    rng = np.random.default_rng(int(fill * 100) + views + 10 * tiny + ties)
    nqp, n, n_cols = 23, 7, 30
    e, dense = _random_e(rng, nqp, views * n, n_cols, fill, ties)
    expected = np.minimum(dense[:nqp, None, :].astype(np.float64), dense[None, nqp:, :]).sum(-1)
    if tiny:
        monkeypatch.setattr(mser_mod, "_PIECE", 3)
        monkeypatch.setattr(mser_mod, "_JOIN_CHUNK", 20)
    results = {join: mser_mod._jaccard_overlap(e, nqp, n_cols, join, views).numpy() for join in ("dense", "sparse", "auto")}
    for join, got in results.items():
        np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=join)
    np.testing.assert_allclose(results["sparse"], results["dense"], atol=1e-6)
    assert expected[0].max() > 0 and expected[1].max() == 0  # the edge cases are there


def test_column_order_without_scipy_matches():
    # the torch-only conversion (other devices) must give the scipy one: same columns, pairs and lane values
    rng = np.random.default_rng(20)
    e, _ = _random_e(rng, 10, 4 * 6, 12, 0.4, False)
    g = (e[0][10:] - e[0][10], e[1][int(e[0][10]):], e[2][int(e[0][10]):])
    for views in (1, 4):
        ccol, rows, vals = mser_mod._csc(g, 12, views)
        pair, lane, lanes = mser_mod._lanes(mser_mod._row_of(g[0]), len(g[0]) - 1, views)
        ccol2, rows2, vals2 = mser_mod._csc_sorted(pair, g[1], g[2], lane, lanes, 12)
        torch.testing.assert_close(ccol, ccol2)
        for c in range(12):  # within a column the order may differ
            a, b = slice(ccol[c], ccol[c + 1]), slice(ccol2[c], ccol2[c + 1])
            o1, o2 = torch.argsort(rows[a]), torch.argsort(rows2[b])
            torch.testing.assert_close(rows[a][o1], rows2[b][o2])
            torch.testing.assert_close(vals[a][o1], vals2[b][o2])


def _identity_features(rng, n_ids, nq, ng, views, noise):
    centres = rng.standard_normal((n_ids, 16))
    q = centres[rng.integers(0, n_ids, nq)] + noise * rng.standard_normal((nq, 16))
    g0 = centres[np.arange(ng) % n_ids] + noise * rng.standard_normal((ng, 16))
    g = np.stack([g0] + [g0 + 0.1 * rng.standard_normal(g0.shape) for _ in range(views - 1)])
    unit = lambda x: (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)  # noqa: E731
    return unit(q)[None], unit(g)


@pytest.mark.parametrize("neighbours", ["query", "all"])
@pytest.mark.parametrize("hard", [False, True])
def test_mser_joins_agree_on_easy_and_hard_features(monkeypatch, hard, neighbours):
    # easy: tight identity clusters (V columns filled sparsely); hard: noise mixing the identities, neighbourhoods
    # spanning much of the gallery (columns well filled, so the automatic choice joins some densely)
    rng = np.random.default_rng(30 + hard)
    q, g = _identity_features(rng, 6, 36, 24, 4, 3.0 if hard else 0.05)
    k1, k2 = (20, 10) if hard else (5, 3)
    fills = []
    join = mser_mod._jaccard_overlap

    def spy(e, nqp, n_cols, how="auto", views=1):
        split = int(e[0][nqp])
        fills.append(torch.bincount(e[1][split:], minlength=n_cols).max().item() / (len(e[0]) - 1 - nqp))
        return join(e, nqp, n_cols, how, views)

    monkeypatch.setattr(mser_mod, "_jaccard_overlap", spy)
    results = {how: mser_rerank(q, g, k1, k2, 0.3, neighbours, jaccard=how) for how in ("dense", "sparse", "auto")}
    assert (max(fills) > mser_mod._DENSE_SHARE) == hard
    np.testing.assert_allclose(results["sparse"], results["dense"], atol=1e-6)
    np.testing.assert_allclose(results["auto"], results["dense"], atol=1e-6)
    expected = loop_mser(list(q), list(g), k1, k2, 0.3, neighbours == "query", np.float32)
    np.testing.assert_allclose(results["auto"], expected, atol=2e-6)
    with pytest.raises(ValueError, match="jaccard"):
        mser_rerank(q, g, k1, k2, jaccard="fast")
