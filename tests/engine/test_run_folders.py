"""Run folders that never mix: locked for the life of a run, never left half-made, logs and temporaries consistent
with the checkpoint a run resumes from; resume overrides really run; a NaN stop says what exists."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest
import torch

from helpers.training import poison_identity_loss
from mcja import api
from mcja.engine import trainer as trainer_mod
from mcja.engine.run import train
from mcja.engine.trainer import NonFiniteLoss, Trainer
from mcja.errors import CheckpointError, ConfigError


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _hold_lock(folder: Path):
    """Take the folder's lock the way any other process would (plain flock), independent of mcja's code."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_locked_run_folder_refuses_a_second_train_or_resume(tiny_config, tmp_path):
    cfg = tiny_config("optim.epochs=1")
    train(cfg, run_dir=tmp_path / "r", progress=False)
    before = (tmp_path / "r" / "last.pt").read_bytes()
    held = [_hold_lock(tmp_path / "r"), _hold_lock(tmp_path / "busy")]
    try:
        with pytest.raises(ConfigError, match="in use by another mcja process"):
            api.resume(tmp_path / "r", ["optim.epochs=2"], progress=False)
        with pytest.raises(ConfigError, match="in use by another mcja process"):
            train(cfg, run_dir=tmp_path / "busy", progress=False)
    finally:
        for fd in held:
            os.close(fd)
    assert (tmp_path / "r" / "last.pt").read_bytes() == before
    api.resume(tmp_path / "r", ["optim.epochs=2"], progress=False)  # the lock went with its holder


def test_automatic_names_skip_a_folder_another_process_holds(tiny_config, tmp_path):
    cfg = tiny_config("optim.epochs=1", "name=exp")
    fd = _hold_lock(tmp_path / "runs" / "exp")  # another train has claimed runs/exp but written nothing yet
    try:
        summary = train(cfg, progress=False)
    finally:
        os.close(fd)
    assert summary.run_dir == tmp_path / "runs" / "exp-2"
    assert not (tmp_path / "runs" / "exp" / "last.pt").exists()


def test_a_start_that_fails_before_training_leaves_no_run_folder(tiny_config, tmp_path):
    with pytest.raises(CheckpointError, match="missing.pth"):
        train(tiny_config(f"model.pretrained={tmp_path / 'missing.pth'}", "name=exp"), progress=False)
    with pytest.raises(NonFiniteLoss, match="No checkpoint was written yet"):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(trainer_mod, "identity_loss", lambda logits, labels: logits.sum() * float("nan"))
            train(tiny_config("name=exp"), progress=False)
    runs = tmp_path / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []  # README's runs/<name>/best.pt keeps pointing at real runs


def test_resume_after_a_kill_keeps_the_log_consistent_and_removes_stale_temporaries(tiny_config, tmp_path,
                                                                                   monkeypatch):
    cfg = tiny_config("eval.every=1")
    train(cfg, run_dir=tmp_path / "a", progress=False)

    original = Trainer._train_step

    def crash_in_epoch_two(self, batch, epoch, step):
        if self.state.global_step == 4:  # epoch 2, step 2: after epoch 1's last.pt, before epoch 2's
            (self.run_dir / ".last.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # a killed atomic write
            raise RuntimeError("killed")
        return original(self, batch, epoch, step)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_train_step", crash_in_epoch_two)
        with pytest.raises(RuntimeError, match="killed"):
            train(cfg, run_dir=tmp_path / "b", progress=False)
    assert any(r.get("global_step", 0) == 4 for r in _records(tmp_path / "b"))  # a record past last.pt
    api.resume(tmp_path / "b", progress=False)

    def training_records(run):
        return [(r["kind"], r.get("epoch"), r.get("global_step")) for r in _records(run) if r["kind"] != "resume"]

    assert training_records(tmp_path / "b") == training_records(tmp_path / "a")
    assert not list((tmp_path / "b").glob(".*.tmp"))


def test_overrides_on_resume_run_for_real_and_are_recorded(tiny_config, tmp_path):
    """lr = base * gamma ** (milestones passed): after 2 epochs with a new lr of 2e-3 and milestones [1, 3],
    epoch 3 runs at 2e-3 * 0.1 and epoch 4 at 2e-3 * 0.01; last.pt and config.yaml say so."""
    train(tiny_config("optim.lr_steps=[1]"), run_dir=tmp_path / "r", progress=False)
    summary = api.resume(tmp_path / "r", ["optim.epochs=4", "optim.lr=2e-3", "optim.lr_steps=[1,3]"], progress=False)
    assert summary.epochs == 4
    lrs = {r["epoch"]: r["lr"] for r in _records(tmp_path / "r") if r["kind"] == "train"}
    assert lrs[3] == pytest.approx(2e-4) and lrs[4] == pytest.approx(2e-5)
    saved = torch.load(tmp_path / "r" / "last.pt", weights_only=False)
    assert saved["config"]["optim"]["lr"] == pytest.approx(2e-3)
    assert saved["optimizer"]["param_groups"][0]["initial_lr"] == pytest.approx(2e-3)
    assert "lr: 0.002" in (tmp_path / "r" / "config.yaml").read_text()
    resume_record = next(r for r in _records(tmp_path / "r") if r["kind"] == "resume")
    assert resume_record["changed"]["optim.lr"][1] == pytest.approx(2e-3)


def test_overrides_that_would_change_the_checkpoint_are_refused(tiny_config, tmp_path):
    train(tiny_config("optim.epochs=1"), run_dir=tmp_path / "r", progress=False)
    for item in ("model.depth=34", "data.image_size=[128,64]", "data.dataset=regdb"):
        with pytest.raises(ConfigError, match="cannot change when resuming"):
            api.resume(tmp_path / "r", [item], progress=False)


def test_nan_stop_names_the_checkpoints_that_exist(tiny_config, tmp_path, monkeypatch):
    poison_identity_loss(monkeypatch, call=5)
    with pytest.raises(NonFiniteLoss) as err:
        train(tiny_config("eval.every=0"), run_dir=tmp_path / "n", progress=False)
    message = str(err.value)
    assert str(tmp_path / "n" / "last.pt") in message and "best.pt" not in message  # no best.pt was ever written
    assert not (tmp_path / "n" / "best.pt").exists()


def test_trials_without_out_go_to_a_fresh_folder_each_time(tmp_path, monkeypatch):
    """Two `--trials` invocations never share (and overwrite) a folder; with the same --out the loop continues."""
    from mcja.engine import run as run_mod

    trained: list[Path] = []

    def fake_train(cfg, run_dir=None, progress=True, **_):
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True)
        trained.append(run_dir)
        row = {**{k: 50.0 for k in ("r1", "r5", "r10", "r20", "mAP", "mINP")}, "cmc": [50.0] * 20}
        results = {"protocol": "regdb", "plain": {"visible->thermal": row, "thermal->visible": row}}
        run_mod.write_results(results, run_dir, title="fake")
        return run_mod.RunSummary(run_dir, 1, 1, 50.0, 1.0, results=results)

    monkeypatch.setattr(run_mod, "train", fake_train)
    overrides = [f"output_dir={tmp_path / 'runs'}", "name=regdb"]
    first = api.train_trials("regdb", [1, 2], overrides)
    second = api.train_trials("regdb", [1], overrides)
    assert Path(first["markdown"]).parent == tmp_path / "runs" / "regdb"
    assert Path(second["markdown"]).parent == tmp_path / "runs" / "regdb-2"
    api.train_trials("regdb", [1, 2], overrides, out=tmp_path / "runs" / "regdb")  # continue: nothing retrained
    assert trained == [tmp_path / "runs" / "regdb" / "trial-1", tmp_path / "runs" / "regdb" / "trial-2",
                       tmp_path / "runs" / "regdb-2" / "trial-1"]


def test_non_finite_features_at_evaluation_stop_training_and_keep_the_last_good_checkpoints(tiny_config, tmp_path,
                                                                                            monkeypatch):
    """A diverged model (here: weights poisoned after the last step of epoch 2) must not be scored or selected."""
    original = Trainer._train_step

    def diverge(self, batch, epoch, step):
        out = original(self, batch, epoch, step)
        if self.state.global_step + 1 == 6:
            with torch.no_grad():
                self.model.backbone.conv1.weight.fill_(float("nan"))
        return out

    monkeypatch.setattr(Trainer, "_train_step", diverge)
    with pytest.raises(NonFiniteLoss, match=r"evaluation after epoch 2: .*NaN or infinity") as err:
        train(tiny_config("eval.every=1", "optim.epochs=3"), run_dir=tmp_path / "d", progress=False)
    assert "last.pt" in str(err.value) and "best.pt" in str(err.value)
    best = torch.load(tmp_path / "d" / "best.pt", weights_only=False)
    last = torch.load(tmp_path / "d" / "last.pt", weights_only=False)
    assert best["epoch"] == 1 and last["train_state"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    scores = [r["score_r1"] for r in _records(tmp_path / "d") if r["kind"] == "eval"]
    assert len(scores) == 1 and 0 <= scores[0] <= 100  # only epoch 1 was scored


def test_an_unwritable_output_folder_fails_before_any_work(tiny_config, monkeypatch):
    monkeypatch.setattr("mcja.engine.run._load_data", lambda cfg: pytest.fail("data was read"))
    with pytest.raises(ConfigError, match="--out /proc/mcja-run"):
        train(tiny_config(), run_dir="/proc/mcja-run", progress=False)


def test_a_resume_after_an_epochs_last_step_logs_no_empty_epoch(tiny_config, tmp_path, monkeypatch):
    """Stopped right after step 3 of 3 of epoch 1: the resumed run trains nothing more in epoch 1, so it must not
    log an epoch record averaging zero steps (loss 0, 0 images/s)."""
    cfg = tiny_config()
    with monkeypatch.context() as m:
        original = Trainer._train_step

        def stop_after_step_3(self, batch, epoch, step):
            out = original(self, batch, epoch, step)
            if self.state.global_step + 1 == 3:
                self.request_stop()
            return out

        m.setattr(Trainer, "_train_step", stop_after_step_3)
        with pytest.raises(trainer_mod.TrainingInterrupted):
            train(cfg, run_dir=tmp_path / "r", progress=False)
    api.resume(tmp_path / "r", progress=False)
    epochs = [r for r in _records(tmp_path / "r") if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [2] and epochs[0]["loss"] > 0
