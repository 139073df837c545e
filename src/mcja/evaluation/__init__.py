"""Evaluation of VI-ReID features: metrics, the SYSU-MM01 / RegDB / LLCM protocols, MSER re-ranking, verification,
reports and feature-only figures (`mcja.evaluation.figures`).

Works on features (numpy or torch, any device) and labels only; it never imports the model or the engine, nor reads
images (ranked-list pictures with thumbnails are `mcja.visualize`'s).
"""

from mcja.evaluation.evaluate import evaluate_pair, mean_over_trials, mean_std_over_trials, pair_distance
from mcja.evaluation.figures import cmc_plot
from mcja.evaluation.llcm import evaluate_llcm, llcm_trial_gallery
from mcja.evaluation.metrics import cosine_distance, query_stats, rank_metrics
from mcja.evaluation.mser import mser_rerank
from mcja.evaluation.regdb import REGDB_MSER, evaluate_regdb, regdb_summary
from mcja.evaluation.report import results_json, results_table, write_report
from mcja.evaluation.verification import equal_error_rate, roc_curve, tpr_at_fpr, verification
from mcja.evaluation.sysu import (
    GALLERY_CAMS,
    SYSU_SETTINGS,
    evaluate_sysu,
    load_rand_perm,
    sysu_protocol,
    sysu_query_cams,
    sysu_trial_gallery,
    sysu_trial_masks,
)

__all__ = [
    "GALLERY_CAMS",
    "REGDB_MSER",
    "SYSU_SETTINGS",
    "cmc_plot",
    "cosine_distance",
    "evaluate_llcm",
    "evaluate_pair",
    "evaluate_regdb",
    "evaluate_sysu",
    "llcm_trial_gallery",
    "load_rand_perm",
    "mean_over_trials",
    "mean_std_over_trials",
    "mser_rerank",
    "pair_distance",
    "query_stats",
    "rank_metrics",
    "regdb_summary",
    "results_json",
    "results_table",
    "sysu_protocol",
    "sysu_query_cams",
    "sysu_trial_gallery",
    "sysu_trial_masks",
    "write_report",
    "equal_error_rate",
    "roc_curve",
    "tpr_at_fpr",
    "verification",
]
