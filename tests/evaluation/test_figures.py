"""Feature-only figures: written, labelled with what they claim (the equal-error point), optional extras explained."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from mcja.errors import MCJAError
from mcja.evaluation.figures import roc_plot, similarity_histograms, tsne_plot
from mcja.evaluation.verification import verification


def clustered(rng: np.random.Generator, ids: np.ndarray, centres: np.ndarray, noise: float) -> np.ndarray:
    return (centres[ids] + noise * rng.standard_normal((len(ids), centres.shape[1]))).astype(np.float32)


def test_histograms_report_the_equal_error_point_of_the_pairs(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((8, 32))
    qids, gids = np.repeat(np.arange(8), 6), np.repeat(np.arange(8), 5)
    q, g = clustered(rng, qids, centres, 1.0), clustered(rng, gids, centres, 1.0)
    out = similarity_histograms(q, qids, g, gids, tmp_path / "sim.png")
    assert Image.open(out["path"]).size[0] > 500
    cross = out["cross-modality (infrared vs visible)"]
    exact = verification(q, qids, g, gids)
    # the histogram's EER (at bin edges, 0.02 wide) is close to the exact one from every pair
    assert cross["eer"] == pytest.approx(exact["eer"], abs=3.0)
    assert cross["threshold"] == pytest.approx(exact["eer_threshold"], abs=0.05)
    within = out["within modality (infrared pairs and visible pairs)"]
    assert 0 <= within["eer"] <= 50
    assert roc_plot(exact, tmp_path / "roc.png").exists()


def test_tsne_writes_a_plot_and_names_the_missing_extra(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(12), 4)
    feats = clustered(rng, ids, rng.standard_normal((12, 16)), 0.3)
    path = tsne_plot(feats, ids, np.tile([0, 1], 24), tmp_path / "tsne.png", num_ids=5)
    assert Image.open(path).size[0] > 400
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    with pytest.raises(MCJAError, match=r"mcja\[figures\]"):
        tsne_plot(feats, ids, np.tile([0, 1], 24), tmp_path / "t2.png")
