"""Verification ("are these two the same person?"): ROC of cosine scores over all cross-modality pairs.

A pair is accepted when its score >= a threshold. The ROC has one point per distinct score (plus the
point (0, 0) above the highest score). TPR at a target FPR is the highest TPR whose FPR does not exceed
the target (at the highest threshold that reaches it); the equal error rate (FPR = 1 - TPR) is interpolated
linearly between the two ROC points where FNR - FPR changes sign. Vectorised: one sort of the pair scores, no loop over thresholds.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mcja.evaluation._arrays import as_views, labels, to_numpy
from mcja.evaluation.metrics import cosine_distance

TARGET_FPRS = (1e-4, 1e-3, 1e-2)


def pair_scores(query_feats: Any, query_ids: Any, gallery_feats: Any, gallery_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of every query-gallery pair (view 0) and whether the pair shares an identity, flat."""
    scores = -to_numpy(cosine_distance(query_feats, gallery_feats))
    nq, ng = scores.shape
    same = labels(query_ids, "query_ids", nq)[:, None] == labels(gallery_ids, "gallery_ids", ng)[None, :]
    return scores.reshape(-1).astype(np.float64), same.reshape(-1)


def roc_curve(scores: Any, positive: Any) -> dict[str, np.ndarray]:
    """ROC points (fpr, tpr, threshold) at each distinct score, highest threshold first; (0, 0, inf) prepended."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    p = np.asarray(positive, dtype=bool).reshape(-1)
    n_pos, n_neg = int(p.sum()), int((~p).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"verification needs positive and negative pairs (got {n_pos} positive, {n_neg} negative)")
    order = np.argsort(-s, kind="stable")
    s, p = s[order], p[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # the last pair of each run of equal scores
    tp, fp = np.cumsum(p)[last], np.cumsum(~p)[last]
    return {"fpr": np.r_[0.0, fp / n_neg], "tpr": np.r_[0.0, tp / n_pos], "threshold": np.r_[np.inf, s[last]],
            "positives": np.int64(n_pos), "negatives": np.int64(n_neg)}


def tpr_at_fpr(roc: dict[str, np.ndarray], target: float) -> tuple[float, float]:
    """(TPR, threshold) of the highest TPR among points with FPR <= target; of equal TPRs, the highest threshold.

    The highest threshold reaching that TPR accepts the fewest different-id pairs.
    """
    last = np.flatnonzero(roc["fpr"] <= target)[-1]  # fpr and tpr never decrease along the curve
    i = int(np.searchsorted(roc["tpr"], roc["tpr"][last], side="left"))
    return float(roc["tpr"][i]), float(roc["threshold"][i])


def equal_error_rate(roc: dict[str, np.ndarray]) -> tuple[float, float]:
    """(EER, threshold): where FPR = FNR, linearly interpolated between the ROC points around the crossing."""
    fpr, fnr, thr = roc["fpr"], 1.0 - roc["tpr"], roc["threshold"]
    gap = fnr - fpr  # non-increasing along the curve, 1 at the start and -1 at the end
    j = int(np.flatnonzero(gap <= 0)[0])
    if gap[j] == 0 or j == 0:
        return float(fpr[j]), float(thr[j])
    w = gap[j - 1] / (gap[j - 1] - gap[j])
    eer = fpr[j - 1] + w * (fpr[j] - fpr[j - 1])
    # the threshold between the two points; the first point may be the +inf sentinel
    threshold = thr[j] if not np.isfinite(thr[j - 1]) else thr[j - 1] + w * (thr[j] - thr[j - 1])
    return float(eer), float(threshold)


def verification(query_feats: Any, query_ids: Any, gallery_feats: Any, gallery_ids: Any,
                 fprs: Sequence[float] = TARGET_FPRS) -> dict[str, Any]:
    """Cross-modality verification: ROC, TPR (percent) and threshold at each target FPR, EER (percent).

    Every query-gallery pair counts once (query infrared, gallery visible, or the other way round).
    """
    if as_views(query_feats).shape[1] == 0 or as_views(gallery_feats).shape[1] == 0:
        raise ValueError("verification needs at least one query and one gallery feature")
    roc = roc_curve(*pair_scores(query_feats, query_ids, gallery_feats, gallery_ids))
    eer, eer_threshold = equal_error_rate(roc)
    points = {f"{f:g}": tpr_at_fpr(roc, f) for f in fprs}
    return {
        "pairs": {"positive": int(roc["positives"]), "negative": int(roc["negatives"])},
        "tpr_at_fpr": {k: 100.0 * v[0] for k, v in points.items()},
        "threshold_at_fpr": {k: v[1] for k, v in points.items()},
        "eer": 100.0 * eer,
        "eer_threshold": eer_threshold,
        "roc": roc,
    }


def verification_json(result: dict[str, Any], max_points: int = 200) -> dict[str, Any]:
    """The result without numpy arrays; the ROC thinned to about `max_points` points (log-spaced in FPR)."""
    roc = result["roc"]
    keep = np.unique(np.r_[0, np.searchsorted(roc["fpr"], np.geomspace(1e-6, 1, max_points)).clip(0, len(roc["fpr"]) - 1)])
    out = {k: v for k, v in result.items() if k != "roc"}
    out["threshold_at_fpr"] = {k: _finite(v) for k, v in result["threshold_at_fpr"].items()}
    out["eer_threshold"] = _finite(result["eer_threshold"])
    out["roc"] = {k: [_finite(x) for x in roc[k][keep]] for k in ("fpr", "tpr", "threshold")}
    return out


def _finite(x: float) -> float | None:
    """JSON has no infinity: the sentinel threshold above every score becomes null."""
    return float(x) if np.isfinite(x) else None


def verification_table(result: dict[str, Any], title: str = "Verification (cross-modality pairs)") -> str:
    """A markdown section: pair counts, TPR and threshold at each FPR, and the EER with its threshold."""
    pairs = result["pairs"]
    lines = [f"## {title}", "",
             f"{pairs['positive']:,} same-id and {pairs['negative']:,} different-id pairs; a pair is accepted when "
             "its cosine similarity is at least the threshold.", "",
             "| operating point | TPR (%) | threshold |", "|---|---:|---:|"]
    for fpr, tpr in result["tpr_at_fpr"].items():
        thr = result["threshold_at_fpr"][fpr]
        shown = f"{thr:.4f}" if np.isfinite(thr) else "none (no pair accepted)"
        lines.append(f"| FPR = {fpr} | {tpr:.2f} | {shown} |")
    lines.append(f"| equal error rate: {result['eer']:.2f}% | {100 - result['eer']:.2f} | {result['eer_threshold']:.4f} |")
    return "\n".join(lines) + "\n"
