"""DDP on CPU (gloo): two processes under torchrun train together, each on different identities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers.processes import TORCHRUN, run_torchrun


def _common(root: Path, tmp: Path) -> list[str]:
    return [f"data.root={root}", f"data.cache_dir={tmp / 'cache'}", "data.image_size=[64,32]", "data.p_size=4",
            "data.k_size=4", "augment.padding=2", "optim.epochs=2", "train.steps_per_epoch=3", "train.device=cpu",
            "eval.start=1", "eval.every=0", "eval.trials=2", "eval.mser=false"]


@pytest.mark.slow
def test_two_gloo_ranks_see_disjoint_identities_and_stay_in_sync(sysu_root, tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    proc = run_torchrun([*TORCHRUN, str(worker), str(tmp_path), *_common(sysu_root, tmp_path)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert len(r0["batches"]) == len(r1["batches"]) == 6  # same number of steps on both ranks
    for a, b in zip(r0["batches"], r1["batches"]):
        assert len(a) == len(b) == 4  # P = 4 identities per rank and step
        assert not set(a) & set(b), f"ranks share identities in one step: {a} / {b}"
    assert r0["checksum"] == pytest.approx(r1["checksum"], rel=1e-6)  # DDP keeps the replicas identical
    assert (tmp_path / "run" / "last.pt").exists() and (tmp_path / "run" / "results.json").exists()


@pytest.mark.slow
def test_torchrun_mcja_train_runs_on_cpu(sysu_root, tmp_path):
    cmd = [*TORCHRUN, "-m", "mcja", "train", "--config", "demo.yaml", "--out", str(tmp_path / "run"), "--quiet",
           *_common(sysu_root, tmp_path), "optim.epochs=1"]
    proc = run_torchrun(cmd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("training finished") == 1  # one summary, from rank 0, which holds the evaluation
    assert "none evaluated" not in proc.stdout and "best epoch 1" in proc.stdout
    ckpt = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["train_state"]["epoch"] == 1
    assert len(ckpt["augment_rng"]) == 2  # both ranks' augmentation streams are saved for resume
