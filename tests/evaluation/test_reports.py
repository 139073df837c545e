"""Reports keep re-ranked figures apart and labelled; CMC curves are drawn from arrays."""

import json
import sys

import numpy as np
import pytest
from PIL import Image

from mcja.errors import MCJAError
from mcja.evaluation import cmc_plot, results_table, write_report
from mcja.evaluation.evaluate import mean_over_trials, mean_std_over_trials


def _result(base, n_trials=2):
    trials = [{"r1": base + t, "r5": base + 5, "r10": base + 6, "r20": base + 7, "mAP": base - 1, "mINP": base - 9,
               "cmc": np.linspace(base, 100, 25)} for t in range(n_trials)]
    return trials


def test_markdown_and_json_keep_reranked_apart(tmp_path):
    plain = {"visible->thermal": mean_std_over_trials(_result(50)), "thermal->visible": mean_std_over_trials(_result(40))}
    rer = {"visible->thermal": mean_std_over_trials(_result(70)), "thermal->visible": mean_std_over_trials(_result(60))}
    md = results_table("RegDB", plain, rer)
    plain_part, rer_part = md.split("## RegDB (MSER re-ranked)")
    assert "MSER" not in plain_part and "50.50 ± 0.50" in plain_part and "trial 2" in plain_part
    rows = [line for line in rer_part.splitlines() if line.startswith("| ") and "setting" not in line]
    assert rows and all("(MSER re-ranked)" in line for line in rows) and "70.50" in rer_part
    md_path, json_path = write_report(tmp_path / "regdb", "RegDB", plain, rer)
    data = json.loads(json_path.read_text())
    assert set(data) >= {"plain", "mser_reranked"} and data["plain"]["visible->thermal"]["std"]["r1"] == 0.5
    assert md_path.read_text() == md and not list(tmp_path.glob(".*tmp"))


def test_plain_only_sysu_table():
    md = results_table("SYSU-MM01", {"all-search single-shot": mean_over_trials(_result(80, 10))})
    assert "MSER" not in md and "mean over 10 trials" in md and "trial 3" not in md
    with pytest.raises(ValueError):
        results_table("SYSU-MM01")


def test_cmc_plot(tmp_path, monkeypatch):
    path = cmc_plot({"plain": np.linspace(40, 90, 30), "MSER re-ranked": np.linspace(60, 95, 30)}, tmp_path / "cmc.png")
    assert Image.open(path).format == "PNG"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MCJAError, match=r"mcja\[plot\]"):
        cmc_plot({"x": [50.0]}, tmp_path / "c2.png")
