"""The `train` and `test` verbs end to end on tiny synthetic data: reports, reference checkpoints, RegDB trials
(validation selection and learning itself: tests/engine/test_run.py)."""

from __future__ import annotations

import json

import pytest
import torch

from helpers.training import TINY_TRAIN
from mcja.cli import main
from mcja.models import load_model, to_reference_state_dict


def test_train_then_test_writes_reports_with_mser_apart(sysu_root, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--config", "demo.yaml", "--out", str(run), "--quiet", f"data.root={sysu_root}",
                 f"data.cache_dir={tmp_path / 'c'}", *TINY_TRAIN, "eval.mser=true"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "training finished" in printed and "MSER re-ranked" in printed
    assert "eval after epoch 1: rank-1" in printed and "selected: best.pt is now this epoch" in printed
    report = (run / "results.md").read_text()
    assert "## Verification" in report and "equal error rate" in report  # as `mcja test` writes it
    plain, reranked = report.split("(MSER re-ranked)", 1)
    for setting in ("all-search single-shot", "all-search multi-shot", "indoor-search single-shot", "indoor-search multi-shot"):
        assert setting in plain and setting in reranked
    saved = json.loads((run / "results.json").read_text())
    assert set(saved["plain"]) == set(saved["mser_reranked"])

    code = main(["test", "--checkpoint", str(run / "best.pt"), "--dataset", "sysu", "--root", str(sysu_root),
                 "--out", str(tmp_path / "t"), "--trials", "2", "--quiet"])
    assert code == 0
    assert f"results written to {tmp_path / 't' / 'results.md'} and {tmp_path / 't' / 'results.json'}" in \
        capsys.readouterr().out
    again = json.loads((tmp_path / "t" / "results.json").read_text())
    assert again["plain"]["all-search single-shot"]["r1"] == pytest.approx(saved["plain"]["all-search single-shot"]["r1"])
    assert "mser_reranked" not in again  # --mser not given


def test_test_accepts_a_reference_code_state_dict(sysu_root, tmp_path):
    run = tmp_path / "run"
    cfg_args = [f"data.root={sysu_root}", f"data.cache_dir={tmp_path / 'c'}", *TINY_TRAIN, "eval.mser=false"]
    assert main(["train", "--config", "demo.yaml", "--out", str(run), "--quiet", *cfg_args]) == 0
    ours = load_model(run / "best.pt")
    ref_file = tmp_path / "sysu_model_best.pth"
    torch.save(to_reference_state_dict(ours.state_dict()), ref_file)
    common = ["--dataset", "sysu", "--root", str(sysu_root), "--trials", "2", "--size", "64x32", "--quiet"]
    assert main(["test", "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["test", "--checkpoint", str(ref_file), "--out", str(tmp_path / "b"), *common]) == 0
    a, b = (json.loads((tmp_path / d / "results.json").read_text())["plain"] for d in ("a", "b"))
    for setting in a:
        assert b[setting]["r1"] == pytest.approx(a[setting]["r1"]) and b[setting]["mAP"] == pytest.approx(a[setting]["mAP"])


def test_regdb_trials_train_one_model_per_split_and_tabulate(synthetic_root, tmp_path, capsys):
    root = synthetic_root("regdb", ids=8, seed=1, images_per_camera=4)
    code = main(["train", "--config", "regdb.yaml", "--trials", "1-2", "--out", str(tmp_path / "runs"), "--quiet",
                 f"data.root={root}", f"data.cache_dir={tmp_path / 'c'}", "model.pretrained=none", "model.depth=18",
                 "eval.mser=false", *TINY_TRAIN, "data.p_size=2"])
    assert code == 0
    assert (tmp_path / "runs" / "trial-1" / "best.pt").exists() and (tmp_path / "runs" / "trial-2" / "best.pt").exists()
    table = (tmp_path / "runs" / "results.md").read_text()
    assert "visible->thermal" in table and "thermal->visible" in table and "±" in table and "trial 2" in table
    summary = json.loads((tmp_path / "runs" / "results.json").read_text())["plain"]["visible->thermal"]
    r1s = [t["r1"] for t in summary["trials"]]
    assert len(r1s) == 2 and summary["r1"] == pytest.approx(sum(r1s) / 2)
    printed = capsys.readouterr().out
    assert "2 trials" in printed
    assert "(mean of visible->thermal " in printed and ", thermal->visible " in printed  # both directions labelled


@pytest.mark.parametrize("kind, says", [
    ("directory", "a directory, expected a checkpoint file (.pt)"),
    ("text", "not a PyTorch checkpoint (a text file)"),
    ("pickle", "a raw pickle, not a PyTorch zip checkpoint (mcja never unpickles files)"),
])
def test_init_from_a_file_that_is_no_checkpoint_says_what_it_is(sysu_root, tmp_path, capsys, kind, says):
    import pickle
    import warnings

    path = tmp_path / "start.pt"
    if kind == "directory":
        path.mkdir()
    elif kind == "text":
        path.write_text("model: resnet50\n")
    else:
        path.write_bytes(pickle.dumps({"state_dict": {}}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["train", "--config", "demo.yaml", "--out", str(tmp_path / "run"), "--quiet", f"data.root={sysu_root}",
                     f"data.cache_dir={tmp_path / 'c'}", *TINY_TRAIN, f"model.init_from={path}"])
    err = capsys.readouterr().err
    assert code == 2 and err == f"mcja train: error: model.init_from={path}: {says}\n", err
    assert not caught, [str(w.message) for w in caught]  # e.g. torch's pickle-protocol warning
    assert not (tmp_path / "run").exists()  # refused before any run folder
