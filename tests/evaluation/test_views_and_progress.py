"""Plain ranking of multi-view features says it uses view 0; re-ranked protocol runs show a progress bar."""

import warnings

import numpy as np
import pytest

from helpers.evaluation import loop_cosine, loop_metrics, make_sysu
from mcja.evaluation import MserParams, Side, evaluate_llcm, evaluate_pair, evaluate_regdb, sysu_protocol


def _pair(seed=0, n=8, dim=6):
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n // 2), 2)
    q = rng.standard_normal((n, dim)).astype(np.float32)
    g4 = rng.standard_normal((4, n, dim)).astype(np.float32)
    return q, ids, g4


def test_multi_view_without_rerank_warns_and_ranks_view_0():
    q, ids, g4 = _pair()
    qc, gc = np.zeros(len(ids)), np.ones(len(ids))
    with pytest.warns(UserWarning, match=r"gallery 4\) and rerank=None: plain ranking uses view 0"):
        r = evaluate_pair(q, ids, qc, g4, ids, gc)
    cmc, m_ap, _ = loop_metrics(loop_cosine(q, g4[0]), ids, qc, ids, gc)
    assert r["mAP"] == pytest.approx(m_ap * 100) and r["r1"] == pytest.approx(cmc[0] * 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # single-view features, or re-ranking all views: no warning
        evaluate_pair(q, ids, qc, g4[0], ids, gc)
        evaluate_pair(q, ids, qc, g4, ids, gc, rerank="mser", k1=2, k2=1)


def test_sysu_plain_ranking_of_views_warns_too():
    d = make_sysu(np.random.default_rng(3), n_ids=5)
    g4 = np.stack([d["g_feats"]] * 4)
    with pytest.warns(UserWarning, match="uses view 0"):
        sysu_protocol(Side.of(d["q_feats"], d["q_ids"], d["q_cams"]), Side.of(g4, d["g_ids"], d["g_cams"], d["g_paths"]),
                      d["perm"], trials=1)


def test_rerank_progress_bars(capsys):
    d = make_sysu(np.random.default_rng(4), n_ids=6)
    args = (Side.of(d["q_feats"], d["q_ids"], d["q_cams"]), Side.of(d["g_feats"], d["g_ids"], d["g_cams"], d["g_paths"]),
            d["perm"])
    sysu_protocol(*args, trials=2, mser=MserParams(k1=3, k2=2))
    assert capsys.readouterr().err == ""  # off by default
    sysu_protocol(*args, trials=2, mser=MserParams(k1=3, k2=2), progress=True)
    err = capsys.readouterr().err
    assert "MSER SYSU-MM01 trials" in err and "/8" in err  # 4 settings x 2 trials
    q, ids, g4 = _pair(1)
    evaluate_regdb(g4, ids, q, ids, rerank="mser", progress=True, k1=2, k2=1)
    assert "MSER RegDB directions" in capsys.readouterr().err
    cams = np.tile([1, 2], len(ids) // 2)
    paths = [f"/LLCM/{i:04d}_c{c:02d}_{k}.jpg" for k, (i, c) in enumerate(zip(ids, cams))]
    evaluate_llcm(g4, ids, cams, paths, q, ids, cams, paths, trials=2, rerank="mser", progress=True, k1=2, k2=1)
    assert "MSER LLCM trials" in capsys.readouterr().err
