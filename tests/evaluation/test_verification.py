"""Verification metrics against a straightforward loop over every threshold (no sorting tricks)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mcja.evaluation.verification import (
    equal_error_rate,
    pair_scores,
    roc_curve,
    tpr_at_fpr,
    verification,
    verification_json,
    verification_table,
)


def reference(scores: np.ndarray, positive: np.ndarray, targets: list[float]) -> dict:
    """For each candidate threshold t (every distinct score, and +inf): accept score >= t; count by hand."""
    thresholds = [np.inf] + sorted(set(scores.tolist()), reverse=True)
    pts = []
    for t in thresholds:
        acc = scores >= t
        pts.append((t, (acc & ~positive).sum() / (~positive).sum(), (acc & positive).sum() / positive.sum()))
    tpr_at = {}
    for f in targets:
        best = max((p for p in pts if p[1] <= f), key=lambda p: p[2])
        tpr_at[f] = (best[2], best[0])
    # EER: walk until FNR - FPR first drops to <= 0, interpolate with the previous point
    prev = pts[0]
    for p in pts:
        gap, pgap = (1 - p[2]) - p[1], (1 - prev[2]) - prev[1]
        if gap <= 0:
            if gap == 0 or p is pts[0]:
                eer = p[1]
            else:
                w = pgap / (pgap - gap)
                eer = prev[1] + w * (p[1] - prev[1])
            break
        prev = p
    return {"points": pts, "tpr_at": tpr_at, "eer": eer}


@pytest.mark.parametrize("seed, ties", [(0, False), (1, True)])
def test_roc_operating_points_and_eer_match_a_per_threshold_loop(seed, ties):
    rng = np.random.default_rng(seed)
    positive = rng.random(3000) < 0.1
    scores = rng.normal(0, 1, 3000) + 1.5 * positive
    if ties:  # many exact ties between pair scores
        scores = np.round(scores * 4) / 4
    roc = roc_curve(scores, positive)
    ref = reference(scores, positive, [1e-3, 1e-2, 0.1])
    assert len(roc["fpr"]) == len(ref["points"])  # one point per distinct score (+ the start)
    np.testing.assert_allclose(roc["fpr"], [p[1] for p in ref["points"]], atol=1e-12)
    np.testing.assert_allclose(roc["tpr"], [p[2] for p in ref["points"]], atol=1e-12)
    np.testing.assert_array_equal(roc["threshold"], [p[0] for p in ref["points"]])
    for f in (1e-3, 1e-2, 0.1):
        tpr, thr = tpr_at_fpr(roc, f)
        assert (tpr, thr) == pytest.approx(ref["tpr_at"][f], abs=1e-12)
    assert equal_error_rate(roc)[0] == pytest.approx(ref["eer"], abs=1e-12)


def test_verification_scores_every_cross_pair_by_cosine():
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((12, 16))
    qids, gids = rng.integers(0, 12, 40), rng.integers(0, 12, 55)
    q = (centres[qids] + rng.standard_normal((40, 16))).astype(np.float32)
    g = (centres[gids] + rng.standard_normal((55, 16))).astype(np.float32)
    scores, positive = pair_scores(q, qids, g, gids)
    loop = [float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)) for a in q.astype(float) for b in g.astype(float)]
    np.testing.assert_allclose(scores, loop, atol=1e-5)
    np.testing.assert_array_equal(positive, [a == b for a in qids for b in gids])
    got = verification(q, qids, g, gids, fprs=(1e-2,))
    ref = reference(scores, positive, [1e-2])
    assert got["tpr_at_fpr"]["0.01"] == pytest.approx(100 * ref["tpr_at"][1e-2][0])
    assert got["threshold_at_fpr"]["0.01"] == ref["tpr_at"][1e-2][1]
    assert got["eer"] == pytest.approx(100 * ref["eer"])
    assert got["pairs"] == {"positive": int(positive.sum()), "negative": int((~positive).sum())}


def test_perfectly_separated_scores_give_zero_eer_and_full_tpr():
    roc = roc_curve([0.9, 0.8, 0.1, 0.0], [True, True, False, False])
    np.testing.assert_array_equal(roc["tpr"], [0, 0.5, 1, 1, 1])
    np.testing.assert_array_equal(roc["fpr"], [0, 0, 0, 0.5, 1])
    q = np.eye(3, dtype=np.float32)
    out = verification(q, [0, 1, 2], q, [0, 1, 2])
    assert out["eer"] == 0 and all(v == 100 for v in out["tpr_at_fpr"].values())
    assert out["threshold_at_fpr"]["0.0001"] == pytest.approx(1.0)


def test_json_and_table_are_plain_and_readable():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((20, 8)).astype(np.float32)
    out = verification(q, rng.integers(0, 4, 20), q[::-1].copy(), rng.integers(0, 4, 20))
    text = json.dumps(verification_json(out), allow_nan=False)  # no NaN/inf leaks into the JSON
    assert '"eer"' in text
    table = verification_table(out)
    assert "equal error rate" in table and "FPR = 0.0001" in table


def test_needs_both_kinds_of_pairs():
    with pytest.raises(ValueError, match="positive and negative"):
        verification(np.eye(2, dtype=np.float32), [0, 0], np.eye(2, dtype=np.float32), [0, 0])
