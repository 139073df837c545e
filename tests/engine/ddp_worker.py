"""Run under torchrun by test_distributed.py: train with a hook that records each rank's batch identities.

usage: torchrun --nproc_per_node 2 ddp_worker.py OUT_DIR KEY=VALUE...
Writes OUT_DIR/rank<r>.json with the labels of every batch and a checksum of the final weights.
"""

import json
import sys
from pathlib import Path

import torch

from mcja.config import load_config
from mcja.engine.run import train
from mcja.engine.trainer import Trainer

out, overrides = Path(sys.argv[1]), sys.argv[2:]
seen: list[list[int]] = []
original = Trainer._train_step


def recording_step(self, batch, epoch, step):
    seen.append(sorted(set(batch["labels"].tolist())))
    return original(self, batch, epoch, step)


Trainer._train_step = recording_step
cfg = load_config("demo", overrides)
trainers: list[Trainer] = []
original_fit = Trainer.fit


def keep(self):
    trainers.append(self)
    return original_fit(self)


Trainer.fit = keep
train(cfg, run_dir=out / "run", progress=False)
model = trainers[0].model
checksum = float(sum(p.double().sum() for p in model.parameters()))
rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else int(__import__("os").environ.get("RANK", 0))
(out / f"rank{rank}.json").write_text(json.dumps({"batches": seen, "checksum": checksum,
                                                   "world": int(__import__("os").environ.get("WORLD_SIZE", 1))}))
