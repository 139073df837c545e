"""Reports keep re-ranked figures apart and labelled; pictures are drawn from image paths."""

import json
import sys

import numpy as np
import pytest
from PIL import Image

from mcja.errors import MCJAError
from mcja.evaluation import cmc_plot, ranked_list_image, ranked_list_pictures, results_table, write_report
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


def _images(tmp_path, n):
    paths = []
    for i in range(n):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (20, 40), (i * 30 % 255, 100, 50)).save(p)
        paths.append(str(p))
    return paths


def test_ranked_list_picture_borders_and_files(tmp_path):
    paths = _images(tmp_path, 4)
    img = ranked_list_image(paths[0], paths[1:], scores=[0.9, 0.5, 0.1], correct=[True, False, True], size=(32, 16))
    tile = 16 + 8 + 6
    assert img.size[0] == 4 * tile + 6 + 6
    assert img.getpixel((6 + tile + 6 + 1, 7)) == (0, 170, 0)  # first gallery tile: green border
    assert img.getpixel((6 + 2 * tile + 6 + 1, 7)) == (220, 0, 0)  # second: red
    dist = np.array([[0.3, 0.1, 0.2], [0.1, 0.2, 0.3]], dtype=np.float32)
    out = ranked_list_pictures(tmp_path / "lists", dist, paths[:2], [1, 2], paths[1:], [1, 2, 1], queries=[1], k=2)
    assert out[0].exists() and Image.open(out[0]).size[1] > 32


def test_cmc_plot(tmp_path, monkeypatch):
    path = cmc_plot({"plain": np.linspace(40, 90, 30), "MSER re-ranked": np.linspace(60, 95, 30)}, tmp_path / "cmc.png")
    assert Image.open(path).format == "PNG"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MCJAError, match=r"mcja\[plot\]"):
        cmc_plot({"x": [50.0]}, tmp_path / "c2.png")
