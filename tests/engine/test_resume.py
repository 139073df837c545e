"""Checkpoints and faults: resume after Ctrl-C or a crash equals an uninterrupted run; NaN stops; bad roots fail early."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.training import poison_identity_loss
from mcja import api
from mcja.engine.run import train
from mcja.engine.trainer import NonFiniteLoss, Trainer, TrainingInterrupted
from mcja.errors import ConfigError, DatasetError


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)["state_dict"]


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"weights differ after resume: {different[:5]}"


def _hook_step(monkeypatch: pytest.MonkeyPatch, at_global_step: int, action) -> None:
    """Run `action(trainer)` right after optimisation step number `at_global_step` (1-based, counted across epochs)."""
    original = Trainer._train_step

    def step(self: Trainer, batch, epoch, step_):
        out = original(self, batch, epoch, step_)
        if self.state.global_step + 1 == at_global_step:
            action(self)
        return out

    monkeypatch.setattr(Trainer, "_train_step", step)


def test_resume_after_ctrl_c_equals_uninterrupted_run(tiny_config, tmp_path, monkeypatch):
    cfg = tiny_config()
    reference = train(cfg, run_dir=tmp_path / "a", progress=False)
    assert reference.epochs == 2

    with monkeypatch.context() as m:
        _hook_step(m, 5, lambda t: t.request_stop())  # epoch 2, step 2 of 3
        with pytest.raises(TrainingInterrupted, match="epoch 2, step 2"):
            train(cfg, run_dir=tmp_path / "b", progress=False)
    saved = torch.load(tmp_path / "b" / "last.pt", map_location="cpu", weights_only=False)
    assert (saved["train_state"]["epoch"], saved["train_state"]["step"]) == (1, 2)

    resumed = api.resume(tmp_path / "b", progress=False)
    assert resumed.epochs == 2
    _assert_same_weights(tmp_path / "a", tmp_path / "b")


def test_crash_mid_epoch_resumes_from_last_epoch_checkpoint(tiny_config, tmp_path, monkeypatch):
    cfg = tiny_config()
    train(cfg, run_dir=tmp_path / "a", progress=False)

    def crash(_):
        raise RuntimeError("simulated crash")

    with monkeypatch.context() as m:
        _hook_step(m, 5, crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            train(cfg, run_dir=tmp_path / "b", progress=False)
    saved = torch.load(tmp_path / "b" / "last.pt", map_location="cpu", weights_only=False)
    assert (saved["train_state"]["epoch"], saved["train_state"]["step"]) == (1, 0)  # the end of epoch 1 survives

    api.resume(tmp_path / "b", progress=False)
    _assert_same_weights(tmp_path / "a", tmp_path / "b")


def test_resume_can_extend_a_finished_run(tiny_config, tmp_path):
    cfg = tiny_config("optim.epochs=1")
    train(cfg, run_dir=tmp_path / "r", progress=False)
    summary = api.resume(tmp_path / "r", ["optim.epochs=2"], progress=False)
    assert summary.epochs == 2


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_last_good_checkpoint(tiny_config, tmp_path, monkeypatch):
    poison_identity_loss(monkeypatch, call=5)
    with pytest.raises(NonFiniteLoss, match=r"epoch 2, step 2") as err:
        train(tiny_config(), run_dir=tmp_path / "n", progress=False)
    assert "last.pt" in str(err.value)
    saved = torch.load(tmp_path / "n" / "last.pt", map_location="cpu", weights_only=False)
    assert saved["train_state"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point())


def test_wrong_root_fails_before_any_model_is_built(tiny_config, tmp_path, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was built before the data root was checked")

    monkeypatch.setattr("mcja.engine.run.MCJA", no_model)
    with pytest.raises(DatasetError, match="does-not-exist"):
        train(tiny_config(f"data.root={tmp_path / 'does-not-exist'}"), progress=False)
    with pytest.raises(ConfigError, match="data.root"):
        train(tiny_config("data.root="), progress=False)


def test_existing_run_folder_is_not_overwritten(tiny_config, tmp_path):
    cfg = tiny_config("optim.epochs=1")
    train(cfg, run_dir=tmp_path / "r", progress=False)
    before = (tmp_path / "r" / "last.pt").read_bytes()
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, run_dir=tmp_path / "r", progress=False)
    assert (tmp_path / "r" / "last.pt").read_bytes() == before


@pytest.mark.slow
def test_sigint_saves_mid_epoch_and_exits_130(sysu_root, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "mcja", "train", "--config", "demo.yaml", "--out", str(run), "--quiet",
           f"data.root={sysu_root}", f"data.cache_dir={tmp_path / 'c'}", "data.image_size=[64,32]", "data.p_size=4",
           "data.k_size=4", "train.device=cpu", "optim.epochs=50", "eval.start=1", "eval.every=0", "eval.mser=false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        while not (run / "metrics.jsonl").exists() and time.time() < deadline:  # first logged step
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)["train_state"]
    assert state["global_step"] >= 1 and state["epoch"] < 50
