"""The protocol registry, MSER presets, the value of one side of a test, and the MSER settings from the config."""

import numpy as np
import pytest

from helpers.evaluation import loop_metrics, loop_mser, make_sysu
from mcja.config import load_config
from mcja.data.registry import DATASETS
from mcja.engine.evaluate import mser_settings
from mcja.errors import ConfigError
from mcja.evaluation import (
    MSER_PRESETS,
    PROTOCOLS,
    MserParams,
    ProtocolRun,
    Side,
    find_protocol,
    run_protocol,
    sysu_whole_gallery,
)
from mcja.evaluation.report import results_table


def test_presets_are_the_published_settings():
    # MCJA-SPEC, "MSER (test time)": SYSU-MM01 k1 40, k2 20, lambda 0.3, neighbours from the queries; RegDB 50, 10, 0.2
    assert MSER_PRESETS["sysu"] == MserParams(k1=40, k2=20, lambda_value=0.3, neighbours="query")
    assert MSER_PRESETS["regdb"] == MserParams(k1=50, k2=10, lambda_value=0.2, neighbours="all")
    assert PROTOCOLS["sysu"].mser is MSER_PRESETS["sysu"] and PROTOCOLS["regdb"].mser is MSER_PRESETS["regdb"]
    assert MSER_PRESETS["sysu"].as_kwargs() == {"k1": 40, "k2": 20, "lambda_value": 0.3, "neighbours": "query",
                                                "multi_view": None, "normalize": True, "jaccard": "auto"}


def test_every_dataset_names_a_known_protocol():
    assert {spec.protocol for spec in DATASETS.values()} <= set(PROTOCOLS)
    with pytest.raises(ValueError, match="unknown protocol 'nope'.*sysu, regdb, llcm, pair"):
        find_protocol("nope")


def test_selection_score_first_row_for_sysu_mean_elsewhere():
    rows = {"a": {"r1": 80.0}, "b": {"r1": 60.0}}
    assert PROTOCOLS["sysu"].selection_score(rows) == 80.0
    assert PROTOCOLS["regdb"].selection_score(rows) == 70.0


def test_side_checks_lengths_and_names_itself():
    feats = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="gallery ids has 2 entries, the features have 3"):
        Side.of(feats, [1, 2], name="gallery")
    with pytest.raises(ValueError, match="gallery paths have 1 entries"):
        Side.of(feats, [1, 2, 3], [1, 1, 1], ["a.jpg"], name="gallery")
    side = Side.of(feats, [1, 2, 3], name="query")
    assert side.feats.shape == (1, 3, 4) and side.cams.tolist() == [0, 0, 0] and len(side) == 3
    part = side.take(np.array([True, False, True]))
    assert part.ids.tolist() == [1, 3] and part.feats.shape == (1, 2, 4)
    assert side.with_cams(np.array([5, 5, 5])).cams.tolist() == [5, 5, 5] and side.cams.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="LLCM needs the query image paths"):
        side.require_paths("LLCM")


def test_whole_gallery_sysu_matches_a_per_query_loop():
    # Without rand_perm_cam: infrared queries against every visible image of the mode's cameras, cam 3 counted as 2
    d = make_sysu(np.random.default_rng(2), n_ids=8)
    query = Side.of(d["q_feats"], d["q_ids"], d["q_cams"], name="query")
    gallery = Side.of(d["g_feats"], d["g_ids"], d["g_cams"], d["g_paths"], name="gallery")
    res = sysu_whole_gallery(query, gallery)
    qcams = np.where(d["q_cams"] == 3, 2, d["q_cams"])
    for mode, cams in (("all", (1, 2, 4, 5)), ("indoor", (1, 2))):
        m = np.isin(d["g_cams"], cams)
        q = d["q_feats"] / np.linalg.norm(d["q_feats"], axis=1, keepdims=True)
        g = d["g_feats"][m] / np.linalg.norm(d["g_feats"][m], axis=1, keepdims=True)
        cmc, m_ap, _ = loop_metrics(-q @ g.T, d["q_ids"], qcams, d["g_ids"][m], d["g_cams"][m])
        row = res[f"{mode}-search whole gallery"]
        assert row["r1"] == pytest.approx(100 * cmc[0]) and row["mAP"] == pytest.approx(100 * m_ap)
    assert d["q_cams"].tolist() == query.cams.tolist()  # the rule works on a copy


def test_pair_protocol_reranks_with_the_given_parameters():
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(6), 3)
    vis = rng.standard_normal((len(ids), 8)).astype(np.float32)
    ir = (vis + 0.5 * rng.standard_normal(vis.shape)).astype(np.float32)
    visible, infrared = Side.of(vis, ids, np.zeros(len(ids)), name="visible"), Side.of(ir, ids, np.ones(len(ids)))
    mser = MserParams(k1=3, k2=2, lambda_value=0.3, neighbours="all")
    res = run_protocol("pair", visible, infrared, mser, ProtocolRun())
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    dist = loop_mser(unit(ir)[None], unit(vis)[None], 3, 2, 0.3, masked=False, store_dtype=np.float32)
    cmc, m_ap, _ = loop_metrics(dist, ids, np.ones(len(ids)), ids, np.zeros(len(ids)))
    assert res["infrared->visible"]["r1"] == pytest.approx(100 * cmc[0], abs=1e-6)
    assert res["infrared->visible"]["mAP"] == pytest.approx(100 * m_ap, abs=1e-4)


def test_mser_settings_come_from_the_config():
    auto = load_config("sysu").eval
    assert mser_settings(auto, "sysu") == MSER_PRESETS["sysu"]
    assert mser_settings(auto, "regdb") == MSER_PRESETS["regdb"]  # auto: the protocol's own
    assert mser_settings(auto, "pair") == MSER_PRESETS["regdb"]
    cfg = load_config("sysu", ["eval.mser_preset=regdb", "eval.mser_k1=30", "eval.mser_lambda=0"]).eval
    assert mser_settings(cfg, "sysu") == MserParams(k1=30, k2=10, lambda_value=0.0, neighbours="all")
    with pytest.raises(ConfigError, match="'eval.mser_preset' must be one of auto, sysu, regdb, llcm; got 'msr'"):
        load_config("sysu", ["eval.mser_preset=msr"])
    with pytest.raises(ConfigError, match="'eval.mser_lambda' must be 0..1"):
        load_config("sysu", ["eval.mser_lambda=1.5"])


def test_results_table_states_the_mser_parameters():
    row = {k: 50.0 for k in ("r1", "r5", "r10", "r20", "mAP", "mINP")}
    md = results_table("RegDB", {"v->t": row}, {"v->t": row}, rerank_note=MSER_PRESETS["regdb"].describe())
    reranked = md.split("(MSER re-ranked)", 1)[1]
    assert "MSER parameters: k1 50, k2 10, lambda 0.2, neighbours from all items." in reranked
    assert "MSER parameters" not in md.split("(MSER re-ranked)", 1)[0]


def test_array_forms_still_take_every_mser_keyword():
    rng = np.random.default_rng(4)
    ids = np.repeat(np.arange(5), 2)
    q, g = rng.standard_normal((10, 6)).astype(np.float32), rng.standard_normal((3, 10, 6)).astype(np.float32)
    from mcja.evaluation import evaluate_pair, mser_rerank, rank_metrics

    got = evaluate_pair(q, ids, np.ones(10), g, ids, np.zeros(10), rerank="mser", k1=3, k2=2, multi_view="gallery",
                        normalize=False)
    want = rank_metrics(mser_rerank(q, g, k1=3, k2=2, multi_view="gallery", normalize=False), ids, np.ones(10), ids,
                        np.zeros(10))
    assert got["mAP"] == want["mAP"] and got["r1"] == want["r1"]
    with pytest.raises(TypeError, match="re-ranking parameters given without rerank"):
        evaluate_pair(q, ids, np.ones(10), g[0], ids, np.zeros(10), k1=3)
