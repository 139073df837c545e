"""Tiny CPU training runs: the config overrides the tests that drive `mcja train`, `test` and `ablate` share, and a
loss that turns NaN at a chosen step."""

from __future__ import annotations

import pytest

from mcja.engine import trainer as trainer_mod

# ResNet-18 from the demo config, 64x32, PK 4x4, one epoch of two steps, two evaluation trials, on the CPU.
TINY_TRAIN = ["data.image_size=[64,32]", "data.p_size=4", "data.k_size=4", "augment.padding=2", "train.device=cpu",
              "optim.epochs=1", "train.steps_per_epoch=2", "eval.start=1", "eval.every=0", "eval.trials=2"]


def poison_identity_loss(monkeypatch: pytest.MonkeyPatch, call: int = 5) -> None:
    """Make the trainer's identity loss NaN at its `call`-th call (counting from 1), and only there."""
    calls = {"n": 0}
    original = trainer_mod.identity_loss

    def poisoned(logits, labels):
        calls["n"] += 1
        return original(logits, labels) * (float("nan") if calls["n"] == call else 1.0)

    monkeypatch.setattr(trainer_mod, "identity_loss", poisoned)
