"""The `train` and `test` verbs end to end on tiny synthetic data: reports, reference checkpoints, RegDB trials,
validation selection, and that a short training actually learns."""

from __future__ import annotations

import json

import pytest
import torch

from mcja.cli import main
from mcja.data.registry import load_dataset
from mcja.data.records import INFRARED, VISIBLE
from mcja.data.synthetic import make_synthetic
from mcja.engine.run import eval_images
from mcja.engine.logger import read_metrics
from mcja.engine.run import train
from mcja.models import load_model, to_reference_state_dict

TINY = ["data.image_size=[64,32]", "data.p_size=4", "data.k_size=4", "augment.padding=2", "train.device=cpu",
        "optim.epochs=1", "train.steps_per_epoch=2", "eval.start=1", "eval.every=0", "eval.trials=2"]


def test_train_then_test_writes_reports_with_mser_apart(sysu_root, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--config", "demo.yaml", "--out", str(run), "--quiet", f"data.root={sysu_root}",
                 f"data.cache_dir={tmp_path / 'c'}", *TINY, "eval.mser=true"])
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
    cfg_args = [f"data.root={sysu_root}", f"data.cache_dir={tmp_path / 'c'}", *TINY, "eval.mser=false"]
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


def test_regdb_trials_train_one_model_per_split_and_tabulate(tmp_path, capsys):
    root = make_synthetic("regdb", tmp_path / "regdb", ids=8, seed=1, size=(64, 32), images_per_camera=4)
    code = main(["train", "--config", "regdb.yaml", "--trials", "1-2", "--out", str(tmp_path / "runs"), "--quiet",
                 f"data.root={root}", f"data.cache_dir={tmp_path / 'c'}", "model.pretrained=none", "model.depth=18",
                 "eval.mser=false", *TINY, "data.p_size=2"])
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


def test_validation_ids_select_the_model_without_the_test_set(tiny_config, tmp_path):
    summary = train(tiny_config("data.val_ids=4", "eval.select_on=val", "optim.epochs=1"), run_dir=tmp_path / "v",
                    progress=False)
    evals = [r for r in read_metrics(tmp_path / "v") if r.get("kind") == "eval"]
    assert evals and set(evals[-1]["plain"]) == {"infrared->visible", "visible->infrared"}
    assert summary.best_epoch == 1 and (tmp_path / "v" / "best.pt").exists()
    assert "all-search single-shot" in summary.results["plain"]  # the final report is still the test protocol
    model = load_model(tmp_path / "v" / "best.pt")
    assert model.arch["num_classes"] == 16 - 4  # held-out ids are not trained on


def test_short_training_lowers_the_loss_and_raises_cross_modality_rank1(sysu_root, tiny_config, tmp_path, monkeypatch):
    # Cross-modality retrieval among the training identities (infrared queries, visible gallery): what the
    # ID + CMR objective trains directly; held-out identities need more steps than a unit test has (see the demo).
    cfg = tiny_config("optim.epochs=4", "train.steps_per_epoch=0", "eval.start=0", "eval.every=4", "optim.lr_steps=[4]")
    dataset = load_dataset("sysu", str(sysu_root))
    seen = eval_images(cfg, dataset, ([s for s in dataset.train if s.modality == VISIBLE],
                                      [s for s in dataset.train if s.modality == INFRARED]), progress=False)
    monkeypatch.setattr("mcja.engine.run.eval_images", lambda *args, **kwargs: seen)
    summary = train(cfg, run_dir=tmp_path / "l", progress=False)
    records = read_metrics(tmp_path / "l")
    losses = [r["loss"] for r in records if r.get("kind") == "epoch"]
    r1 = [r["plain"]["infrared->visible"]["r1"] for r in records if r.get("kind") == "eval"]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert len(r1) == 2 and r1[1] > r1[0] + 10, f"rank-1 before/after: {r1}"
    assert summary.best_epoch == 4


def test_sysu_layout_without_rand_perm_cam_trains_and_says_so(sysu_root, tiny_config, tmp_path):
    import shutil

    root = tmp_path / "sysu-no-perm"
    shutil.copytree(sysu_root, root)
    (root / "exp" / "rand_perm_cam.mat").unlink()
    with pytest.warns(UserWarning, match="rand_perm_cam.mat is missing"):
        summary = train(tiny_config(f"data.root={root}", "optim.epochs=1"), run_dir=tmp_path / "r", progress=False)
    assert set(summary.results["plain"]) == {"all-search whole gallery", "indoor-search whole gallery"}
    assert "not the standard trials" in summary.results["label"]
    assert "not the standard trials" in (tmp_path / "r" / "results.md").read_text()
