"""`mcja test --figures N` and `mcja visualize`: every figure written and linked, the verification section present."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from helpers.training import TINY_TRAIN
from mcja.cli import main

TINY = [*TINY_TRAIN, "eval.mser=false"]


@pytest.fixture(scope="module")
def run(sysu_root, tmp_path_factory):
    """A tiny trained run folder, shared by this module's tests."""
    tmp = tmp_path_factory.mktemp("figures")
    assert main(["train", "--config", "demo.yaml", "--out", str(tmp / "run"), "--quiet", f"data.root={sysu_root}",
                 f"data.cache_dir={tmp / 'c'}", *TINY]) == 0
    return tmp / "run"


def test_test_with_figures_writes_and_links_every_figure(run, sysu_root, tmp_path, capsys):
    out = tmp_path / "test"
    assert main(["test", "--checkpoint", str(run / "best.pt"), "--dataset", "sysu", "--root", str(sysu_root),
                 "--out", str(out), "--trials", "2", "--mser", "--figures", "2", "--quiet"]) == 0
    assert "verification (cross-modality pairs): TPR" in capsys.readouterr().out
    figs = {p.name for p in (out / "figures").iterdir()}
    settings = ("all_search_single_shot", "all_search_multi_shot", "indoor_search_single_shot", "indoor_search_multi_shot")
    expected = {"roc.png", "similarity.png", "tsne.png", *(f"cmc_{s}.png" for s in settings)}
    assert expected <= figs
    assert sum(f.startswith("ranked_random_") for f in figs) == 2 and sum(f.startswith("ranked_hardest_") for f in figs) == 2
    assert sum(f.startswith("activation_") for f in figs) == 2
    report = (out / "results.md").read_text()
    linked = set(re.findall(r"!\[[^]]*\]\(figures/([^)]+)\)", report))
    assert linked == figs  # every figure linked, no dangling link
    assert "## Verification (cross-modality pairs)" in report and "equal error rate" in report
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["verification"]["tpr_at_fpr"]) == {"0.0001", "0.001", "0.01"}
    ranked = Image.open(next((out / "figures").glob("ranked_random_*.png")))
    assert ranked.size[1] > 2 * 64  # two rows: plain and MSER re-ranked
    for name in figs:
        assert Image.open(out / "figures" / name).size[0] > 200
    assert "MSER parameters: k1 40, k2 20, lambda 0.3, neighbours from the queries." in report  # SYSU-MM01's own


def test_test_mser_preset_picks_other_parameters(run, sysu_root, tmp_path, capsys):
    out = tmp_path / "preset"
    args = ["test", "--checkpoint", str(run / "best.pt"), "--dataset", "sysu", "--root", str(sysu_root),
            "--out", str(out), "--trials", "1", "--mser", "--quiet", "--mser-preset"]
    assert main([*args, "regdb"]) == 0
    assert "MSER parameters: k1 50, k2 10, lambda 0.2, neighbours from all items." in (out / "results.md").read_text()
    capsys.readouterr()
    assert main([*args, "regbd"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'eval.mser_preset' must be one of auto, sysu, regdb, llcm" in err


def test_visualize_feature_files_and_activation_maps(run, sysu_root, tmp_path):
    files = [str(tmp_path / f"{split}.npz") for split in ("query", "gallery")]
    for split, npz in zip(("query", "gallery"), files):
        assert main(["extract", "--checkpoint", str(run / "best.pt"), "--dataset", "sysu", "--root", str(sysu_root),
                     "--split", split, "--out", npz, "--quiet"]) == 0
    vis_out = tmp_path / "vis"
    assert main(["visualize", *files, "--out", str(vis_out), "--figures", "1", "--fpr", "0.05"]) == 0
    report = (vis_out / "results.md").read_text()
    assert "| FPR = 0.05 |" in report and "FPR = 0.01" not in report  # the chosen operating point only
    assert "## Verification" in report and "figures/similarity.png" in report and "figures/tsne.png" in report
    assert (vis_out / "figures" / "roc.png").exists() and list((vis_out / "figures").glob("ranked_hardest_*.png"))
    cam = tmp_path / "cam.png"
    imgs = sorted(str(p) for p in (sysu_root / "cam1").rglob("*.jpg"))[:3]
    assert main(["visualize", "--checkpoint", str(run / "best.pt"), "--images", *imgs, "--out", str(cam)]) == 0
    assert Image.open(cam).size[0] > 200
    assert np.asarray(Image.open(cam)).std() > 0


def test_visualize_says_when_it_draws_fewer_queries_than_asked(gallery, tmp_path, capsys):
    from helpers.inference import write_feature_file

    npz = write_feature_file(tmp_path / "f.npz", gallery)  # 3 infrared queries, each with its visible match
    assert main(["visualize", str(npz), "--out", str(tmp_path / "vis"), "--figures", "100000"]) == 0
    out = capsys.readouterr().out
    assert "--figures 100000: only 3 queries with a true match, drawing 3" in out, out
    ranked = [p.name for p in (tmp_path / "vis" / "figures").glob("ranked_*.png")]
    assert len(ranked) == 6  # 3 random + 3 hardest: every query, as the note says
    capsys.readouterr()
    assert main(["visualize", str(npz), "--out", str(tmp_path / "vis2"), "--figures", "3"]) == 0
    assert "--figures" not in capsys.readouterr().out  # nothing clamped, nothing said


@pytest.mark.parametrize("short", ["pids", "paths", "modalities", "features"])
def test_visualize_names_a_column_that_does_not_match_the_features(gallery, tmp_path, capsys, short):
    from helpers.inference import write_feature_file

    npz = write_feature_file(tmp_path / "f.npz", gallery, short=short)  # 6 images, one column 5 long
    assert main(["visualize", str(npz), "--out", str(tmp_path / "vis")]) == 2
    err = capsys.readouterr().err
    column = "paths" if short == "features" else short  # short features: the first column checked is named
    assert err.count("\n") == 1 and f"f.npz: '{column}' has shape" in err and "one entry per image" in err, err
