"""Evaluation of VI-ReID features: metrics, the SYSU-MM01 / RegDB / LLCM protocols, MSER re-ranking, verification,
reports and feature-only figures (`mcja.evaluation.figures`).

Works on features (numpy or torch, any device) and labels only; it never imports the model or the engine, nor reads
images (ranked-list pictures with thumbnails are `mcja.visualize`'s).
"""

from mcja.evaluation.evaluate import (
    METRIC_KEYS,
    both_directions,
    evaluate_pair,
    mean_over_trials,
    mean_std_over_trials,
    pair_distance,
    pair_protocol,
)
from mcja.evaluation.figures import cmc_plot
from mcja.evaluation.llcm import evaluate_llcm, llcm_protocol, llcm_trial_gallery
from mcja.evaluation.metrics import cosine_distance, query_stats, rank_metrics
from mcja.evaluation.mser import MSER_PRESETS, MserParams, MserReranker, choose_mser, mser_rerank, refuse_unused_mser
from mcja.evaluation.protocols import PROTOCOLS, Protocol, ProtocolRun, find_protocol, run_protocol
from mcja.evaluation.regdb import evaluate_regdb, regdb_protocol, regdb_summary
from mcja.evaluation.report import read_results, results_json, results_table, write_report, write_results
from mcja.evaluation.side import Side
from mcja.evaluation.sysu import (
    GALLERY_CAMS,
    SYSU_SETTINGS,
    evaluate_sysu,
    load_rand_perm,
    sysu_protocol,
    sysu_query_cams,
    sysu_trial_gallery,
    sysu_trial_masks,
    sysu_whole_gallery,
)
from mcja.evaluation.verification import equal_error_rate, roc_curve, tpr_at_fpr, verification

__all__ = [
    "GALLERY_CAMS",
    "METRIC_KEYS",
    "MSER_PRESETS",
    "MserParams",
    "MserReranker",
    "PROTOCOLS",
    "Protocol",
    "ProtocolRun",
    "SYSU_SETTINGS",
    "Side",
    "both_directions",
    "cmc_plot",
    "cosine_distance",
    "equal_error_rate",
    "evaluate_llcm",
    "evaluate_pair",
    "evaluate_regdb",
    "evaluate_sysu",
    "llcm_protocol",
    "llcm_trial_gallery",
    "load_rand_perm",
    "mean_over_trials",
    "mean_std_over_trials",
    "mser_rerank",
    "choose_mser",
    "refuse_unused_mser",
    "pair_distance",
    "pair_protocol",
    "find_protocol",
    "query_stats",
    "rank_metrics",
    "read_results",
    "regdb_protocol",
    "regdb_summary",
    "results_json",
    "results_table",
    "roc_curve",
    "run_protocol",
    "sysu_protocol",
    "sysu_query_cams",
    "sysu_trial_gallery",
    "sysu_trial_masks",
    "sysu_whole_gallery",
    "tpr_at_fpr",
    "verification",
    "write_report",
    "write_results",
]
