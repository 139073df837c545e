"""Every evaluation entry point refuses NaN / infinite features (and NaN distances) instead of scoring them.

Before this check, evaluate_pair on NaN features returned rank-1 100 and mAP 450: a broken model looked perfect.
"""

import numpy as np
import pytest
import torch

from helpers.evaluation import make_sysu
from mcja.errors import MCJAError, NonFiniteError
from mcja.evaluation import (
    evaluate_llcm,
    evaluate_pair,
    evaluate_regdb,
    evaluate_sysu,
    mser_rerank,
    rank_metrics,
)


def _pair(n=6, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n // 2), 2)
    q = rng.standard_normal((n, dim)).astype(np.float32)
    g = rng.standard_normal((n, dim)).astype(np.float32)
    return q, ids, np.zeros(n, dtype=int), g, ids, np.ones(n, dtype=int)


def _poison(x, rows, value=np.nan):
    out = np.array(x, copy=True)
    out[..., rows, 0] = value
    return out


def test_error_is_both_a_value_error_and_a_user_error():
    assert issubclass(NonFiniteError, ValueError) and issubclass(NonFiniteError, MCJAError)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_evaluate_pair_names_side_and_row_count(value):
    q, qi, qc, g, gi, gc = _pair()
    with pytest.raises(NonFiniteError, match=r"query features: 2 of 6 rows .*rows 1, 4"):
        evaluate_pair(_poison(q, [1, 4], value), qi, qc, g, gi, gc)
    with pytest.raises(NonFiniteError, match=r"gallery features: 1 of 6 rows"):
        evaluate_pair(q, qi, qc, _poison(g, [5], value), gi, gc)
    with pytest.raises(NonFiniteError, match=r"gallery features: 1 of 6 rows"):  # torch input, MSER path
        evaluate_pair(q, qi, qc, torch.from_numpy(_poison(g, [0], value)), gi, gc, rerank="mser", k1=2, k2=1)


def test_multi_view_rows_counted_once_whatever_view_is_bad():
    q, qi, qc, g, gi, gc = _pair()
    g4 = np.stack([g] * 4)
    g4[2, 3, 1] = np.nan  # view 2 (not the one plain ranking uses) of row 3
    g4[0, 3, 0] = np.inf  # the same row again in view 0
    with pytest.raises(NonFiniteError, match=r"gallery features: 1 of 6 rows .*rows 3\)"):
        mser_rerank(q, g4, k1=2, k2=1)


def test_finite_features_still_evaluate():
    q, qi, qc, g, gi, gc = _pair()
    r = evaluate_pair(q, qi, qc, g, gi, gc)
    assert 0 <= r["mAP"] <= 100 and 0 <= r["r1"] <= 100


def test_regdb_names_the_modality():
    q, ids, _, g, _, _ = _pair()
    with pytest.raises(NonFiniteError, match="thermal features: 3 of 6"):
        evaluate_regdb(q, ids, _poison(g, [0, 1, 2]), ids)
    with pytest.raises(NonFiniteError, match="visible features: 1 of 6"):
        evaluate_regdb(_poison(q, [2]), ids, g, ids, rerank="mser")


def test_llcm_names_the_modality():
    q, ids, _, g, _, _ = _pair()
    cams = np.ones(len(ids), dtype=int)
    paths = [f"/x/{i}.jpg" for i in range(len(ids))]
    with pytest.raises(NonFiniteError, match="infrared features: 1 of 6"):
        evaluate_llcm(q, ids, cams, paths, _poison(g, [3]), ids, cams + 1, paths, trials=1)


@pytest.mark.parametrize("rerank", [None, "mser"])
def test_sysu_protocol_names_the_side(rerank):
    d = make_sysu(np.random.default_rng(1), n_ids=6)
    args = (d["q_ids"], d["q_cams"])
    gargs = (d["g_ids"], d["g_cams"], d["g_paths"], d["perm"])
    with pytest.raises(NonFiniteError, match=f"query features: 1 of {len(d['q_ids'])} rows"):
        evaluate_sysu(_poison(d["q_feats"], [0]), *args, d["g_feats"], *gargs, trials=1, rerank=rerank)
    with pytest.raises(NonFiniteError, match=f"gallery features: 2 of {len(d['g_ids'])} rows"):
        evaluate_sysu(d["q_feats"], *args, _poison(d["g_feats"], [0, -1]), *gargs, trials=1, rerank=rerank)


def test_rank_metrics_refuses_nan_distances():
    dist = np.zeros((3, 4), dtype=np.float32)
    dist[1, 2] = np.nan
    with pytest.raises(NonFiniteError, match="distances: 1 of 3 query rows hold NaN"):
        rank_metrics(dist, [0, 1, 2], [0, 0, 0], [0, 1, 2, 2], [1, 1, 1, 1])
