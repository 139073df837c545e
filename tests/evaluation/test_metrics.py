"""Vectorized metrics against a straightforward per-query loop, and hand-derived cases."""

import numpy as np
import pytest
import torch

from helpers.evaluation import loop_cosine, loop_evaluate, loop_metrics
from mcja.evaluation import evaluate_pair, rank_metrics
from mcja.evaluation.metrics import QueryStats, subset_stats, summarize


def _random_case(rng, ties):
    nq, ng = int(rng.integers(5, 40)), int(rng.integers(5, 60))
    if ties:  # a few distance levels: many exact ties, decided by gallery order
        dist = rng.integers(0, int(rng.integers(2, 6)), (nq, ng)).astype(np.float32)
    else:
        dist = rng.standard_normal((nq, ng)).astype(np.float32)
    gids = rng.integers(0, 10, ng)
    qids = rng.integers(0, 12, nq)  # ids 10, 11 never in the gallery: queries without any true match
    qids[0] = 99
    return dist, qids, rng.integers(1, 4, nq), gids, rng.integers(1, 4, ng)


@pytest.mark.parametrize("exclude", ["camera", "id_camera", "none"])
@pytest.mark.parametrize("ties", [False, True])
def test_metrics_match_per_query_loop(exclude, ties):
    rng = np.random.default_rng(7 + ties)
    for _ in range(15):
        dist, qids, qcams, gids, gcams = _random_case(rng, ties)
        with np.errstate(all="ignore"):
            cmc, m_ap, m_inp = loop_metrics(dist, qids, qcams, gids, gcams, exclude)
        if not np.isfinite(m_ap):
            continue
        got = rank_metrics(dist, qids, qcams, gids, gcams, exclude)
        np.testing.assert_allclose(got["cmc"][: len(cmc)], cmc * 100, atol=1e-10)
        assert got["mAP"] == pytest.approx(m_ap * 100, abs=1e-10)
        assert got["mINP"] == pytest.approx(m_inp * 100, abs=1e-10)
        assert got["r1"] == pytest.approx(cmc[0] * 100, abs=1e-10)


def test_gallery_missing_an_identity_and_cmc_padding():
    # 3 gallery ids; query id 7 has no gallery image and is left out of the averages
    dist = np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    gids, gcams = np.array([1, 2, 2, 3]), np.array([1, 1, 1, 1])
    qids, qcams = np.array([2, 3, 7]), np.array([2, 2, 2])
    got = rank_metrics(dist, qids, qcams, gids, gcams)
    # query 0: list ids 1,2,2,3 -> unique rank of id 2 is 2; matches at ranks 2,3: AP = (1/2 + 2/3)/2, INP = 2/3
    # query 1: list 3,2,2,1 -> id 3 first: AP = 1, INP = 1
    assert got["r1"] == pytest.approx(50.0)
    assert got["mAP"] == pytest.approx(100 * ((0.5 + 2 / 3) / 2 + 1) / 2)
    assert got["mINP"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert len(got["cmc"]) == 20 and got["r20"] == got["cmc"][2] == pytest.approx(100.0)


def test_ties_follow_gallery_order():
    dist = np.zeros((1, 4), dtype=np.float32)  # all tied: the ranking is the gallery order
    got = rank_metrics(dist, [5], [1], [4, 5, 6, 5], [2, 2, 2, 2])
    assert got["mAP"] == pytest.approx(100 * (1 / 2 + 2 / 4) / 2)
    assert got["r1"] == 0.0 and got["r5"] == 100.0


def test_same_camera_items_are_dropped():
    dist = np.array([[0.0, 0.5, 0.9]], dtype=np.float32)
    got = rank_metrics(dist, [1], [3], [1, 2, 1], [3, 1, 1])  # the nearest true match is in the query's camera
    assert got["mAP"] == pytest.approx(100 * 1 / 2) and got["r1"] == 0.0
    got = rank_metrics(dist, [1], [3], [1, 2, 1], [3, 1, 1], exclude="none")
    assert got["r1"] == 100.0


def test_evaluate_pair_features_views_and_inputs_untouched():
    rng = np.random.default_rng(3)
    q, g = rng.standard_normal((2, 12, 8)).astype(np.float32), rng.standard_normal((2, 30, 8)).astype(np.float32)
    qids, gids = rng.integers(0, 5, 12), rng.integers(0, 5, 30)
    qcams, gcams = rng.integers(1, 3, 12), rng.integers(1, 4, 30)
    copies = [a.copy() for a in (q, g, qids, gids, qcams, gcams)]
    got = evaluate_pair(q, qids, qcams, g, gids, gcams)
    for a, b in zip((q, g, qids, gids, qcams, gcams), copies):
        np.testing.assert_array_equal(a, b)
    cmc, m_ap, m_inp = loop_metrics(loop_cosine(q[0], g[0]), qids, qcams, gids, gcams)
    assert got["mAP"] == pytest.approx(m_ap * 100) and got["mINP"] == pytest.approx(m_inp * 100)
    l_cmc, l_ap, l_inp = loop_evaluate(q[0], qids, qcams, g[0], gids, gcams)  # the benchmark's loop
    np.testing.assert_allclose(np.r_[l_cmc, l_ap, l_inp], np.r_[cmc, m_ap, m_inp])
    from_torch = evaluate_pair(torch.from_numpy(q[0]), torch.from_numpy(qids), qcams, torch.from_numpy(g[0]), gids, gcams)
    assert from_torch["mAP"] == pytest.approx(got["mAP"]) and set(got) == {"r1", "r5", "r10", "r20", "mAP", "mINP", "cmc"}


def test_no_valid_query_is_an_error():
    with pytest.raises(ValueError, match="no query"):
        rank_metrics(np.zeros((2, 2), dtype=np.float32), [1, 2], [1, 1], [3, 4], [2, 2])


def test_subset_stats_equal_ranking_each_subset_alone():
    # one sort per query serves many gallery subsets: each must equal ranking that subset on its own (a per-query
    # stable argsort). Many exact ties and -0.0 (equal to 0.0), more subsets than one 64-bit mask holds, a full
    # subset and rare ids (runs of over 255 columns between true matches: the byte counters' limit), empty subsets
    rng = np.random.default_rng(11)
    nq, ng = 24, 700
    gids = np.where(rng.random(ng) < 0.01, 0, rng.integers(1, 9, ng))  # id 0: a handful of images
    qids = np.concatenate([[0, 0, 0, 42], rng.integers(0, 9, nq - 4)])  # 42: no true match anywhere
    dist = rng.integers(-2, 3, (nq, ng)).astype(np.float32) * np.float32(0.5)
    dist[rng.random(dist.shape) < 0.3] = -0.0
    lanes = rng.random((70, ng)) < rng.uniform(0.02, 1.0, (70, 1))
    lanes[0], lanes[1] = True, False
    cols = np.argsort(gids, kind="stable")  # the layout subset_stats takes: columns grouped by id
    ap, inp, rank, counts = subset_stats(dist[:, cols], qids, gids[cols], cols, lanes[:, cols])
    assert ap.shape == (70, nq) and not counts[1].any()
    for lane in range(70):
        mask = lanes[lane]
        if not mask.any():
            continue
        with np.errstate(all="ignore"):
            cmc, m_ap, m_inp = loop_metrics(dist[:, mask], qids, np.zeros(nq), gids[mask], np.ones(mask.sum()))
        assert np.array_equal(counts[lane], [(gids[mask] == q).sum() for q in qids])
        if not np.isfinite(m_ap):
            continue
        got = summarize(QueryStats(counts[lane] > 0, ap[lane], inp[lane], rank[lane]), len(np.unique(gids[mask])))
        np.testing.assert_allclose(got["cmc"][: len(cmc)], cmc * 100, atol=1e-10)
        assert got["mAP"] == pytest.approx(m_ap * 100, abs=1e-10)
        assert got["mINP"] == pytest.approx(m_inp * 100, abs=1e-10)
