"""A CPU-sized training config over the shared synthetic SYSU-MM01 set (`sysu_root`, tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcja.config import Config, load_config


@pytest.fixture
def tiny_config(sysu_root: Path, tmp_path: Path):
    """Config factory: ResNet-18 at 64x32, PK 4x4, 2 epochs of 3 steps, deterministic CPU, extra overrides last."""

    def make(*overrides: str) -> Config:
        return load_config("demo", [
            f"data.root={sysu_root}", f"data.cache_dir={tmp_path / 'cache'}", f"output_dir={tmp_path / 'runs'}",
            "data.image_size=[64,32]", "data.p_size=4", "data.k_size=4", "augment.padding=2",
            "optim.epochs=2", "optim.lr_steps=[1]", "train.steps_per_epoch=3", "train.device=cpu",
            "train.deterministic=true", "train.log_every=1", "eval.start=1", "eval.every=0", "eval.trials=2",
            "eval.mser=false", *overrides,
        ])

    return make
