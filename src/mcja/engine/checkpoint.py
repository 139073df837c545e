"""Training checkpoints: `last.pt` (everything needed to resume) and `best.pt` (the selected model).

Both are model checkpoints `mcja.models.load_model` reads directly: they carry the architecture and the
whole config, so nothing else is needed to use them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from mcja import __version__
from mcja.config import Config
from mcja.engine.runtime import rng_state
from mcja.errors import CheckpointError
from mcja.models import MCJA, checkpoint_payload
from mcja.models.reader import Checkpoint, read_checkpoint
from mcja.utils.io import atomic_torch_save

RESUME_KEYS = ("state_dict", "optimizer", "scheduler", "scaler", "train_state", "augment_rng", "rng", "config")


def selected_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The run's selected model: `best.pt` once an evaluation has kept one, else `last.pt`."""
    best = Path(run_dir) / "best.pt"
    return best if best.exists() else Path(run_dir) / "last.pt"


def save_training_state(path: Path, model: MCJA, cfg: Config, **state: Any) -> None:
    """Atomically write a resumable checkpoint (model + optimizer/scheduler/scaler/counters/RNG)."""
    payload = checkpoint_payload(model, config=cfg.to_dict(), rng=rng_state(), mcja_version=__version__, **state)
    atomic_torch_save(payload, path)


def save_best(path: Path, model: MCJA, cfg: Config, **info: Any) -> None:
    """Atomically write the selected model with its config and the metrics that selected it."""
    atomic_torch_save(checkpoint_payload(model, config=cfg.to_dict(), mcja_version=__version__, **info), path)


def load_training_state(path: Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Read `last.pt` (weights-only, like every file); a missing file or one without the resume state gets a clear error."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from (expected last.pt written by `mcja train`)")
    ckpt = read_checkpoint(path, map_location=device)
    missing = [k for k in RESUME_KEYS if not isinstance(ckpt.content, dict) or k not in ckpt.content]
    if missing:
        raise CheckpointError(f"{path}: not a resumable training checkpoint (missing {', '.join(missing)})")
    return ckpt
