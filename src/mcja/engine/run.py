"""A whole training run: check the data, build everything, train, evaluate the selected model, summarise."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mcja.config import Config, apply_override, config_from_dict
from mcja.data.cache import ImageCache
from mcja.data.loader import TrainLoader
from mcja.data.readers import load_dataset
from mcja.data.records import VIDataset
from mcja.data.sampler import PKSampler
from mcja.data.validation import hold_out_ids
from mcja.engine.checkpoint import load_training_state
from mcja.engine.evaluate import evaluate_model, prepare_eval_data, write_results
from mcja.engine.logger import RunLogger
from mcja.engine.runtime import Runtime, seed_everything, setup_runtime, teardown_runtime
from mcja.engine.trainer import Trainer
from mcja.errors import ConfigError
from mcja.models import MCJA, load_model
from mcja.models.finetune import init_from_checkpoint
from mcja.utils.io import atomic_write_text


@dataclass
class RunSummary:
    """What a finished run reports."""

    run_dir: Path
    epochs: int
    best_epoch: int
    best_score: float
    seconds: float
    results: dict[str, Any] = field(default_factory=dict)
    initial: dict[str, Any] = field(default_factory=dict)


def train(cfg: Config, run_dir: str | Path | None = None, resume: str | Path | None = None,
          progress: bool = True) -> RunSummary:
    """Train per `cfg` (or resume the run in `resume`); returns the summary of the finished run."""
    rt = setup_runtime(cfg.train.device, cfg.train.amp, cfg.train.channels_last)
    try:
        return _train(cfg, rt, run_dir, resume, progress)
    finally:
        teardown_runtime(rt)


def resume_config(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config a run was started with (from its `last.pt`), with `key=value` overrides applied."""
    ckpt = load_training_state(Path(run_dir) / "last.pt")
    cfg = config_from_dict(ckpt["config"], source=str(Path(run_dir) / "last.pt"))
    for item in overrides:
        apply_override(cfg, item)
    return cfg


def _train(cfg: Config, rt: Runtime, run_dir: str | Path | None, resume: str | Path | None, progress: bool) -> RunSummary:
    started = time.perf_counter()
    dataset = _load_data(cfg)  # a wrong root fails here, before any model is built
    train_set, val = _selection_split(cfg, dataset)
    out = Path(resume) if resume else _new_run_dir(cfg, run_dir, rt)
    seed_everything(cfg.train.seed + rt.rank, cfg.train.deterministic)
    logger = RunLogger(out, enabled=rt.is_main, tensorboard=cfg.train.tensorboard)
    if rt.is_main and not resume:
        atomic_write_text(out / "config.yaml", cfg.to_yaml())

    loader = _train_loader(cfg, train_set, rt, progress)
    eval_data = prepare_eval_data(cfg, dataset, val, progress=progress) if rt.is_main else None
    model = _build_model(cfg, train_set.num_train_ids, rt)
    if cfg.model.init_from and not resume:  # a resumed run has its own weights in last.pt
        for note in init_from_checkpoint(model, cfg.model.init_from, cfg.model.reset_mda):
            logger.echo(f"init_from: {note}")
    trainer = Trainer(cfg=cfg, rt=rt, run_dir=out, model=model, train_loader=loader, eval_data=eval_data, logger=logger,
                      progress=progress)
    if resume:
        trainer.resume_from(out / "last.pt")
        logger.echo(f"resumed {out} at epoch {trainer.state.epoch}, step {trainer.state.step}")
    else:
        logger.echo(f"run {out}: {dataset.name} ({len(train_set.train)} training images, "
                    f"{train_set.num_train_ids} ids), {trainer.steps_per_epoch()} steps/epoch on {rt.device}")
    state = trainer.fit()
    logger.close()

    summary = RunSummary(run_dir=out, epochs=state.epoch, best_epoch=state.best_epoch,
                         best_score=state.best_score, seconds=time.perf_counter() - started)
    if rt.is_main and eval_data is not None:
        summary.results = final_evaluation(cfg, dataset, out, rt, progress)
    rt.barrier()
    return summary


def final_evaluation(cfg: Config, dataset: VIDataset, run_dir: Path, rt: Runtime, progress: bool) -> dict[str, Any]:
    """The selected model (`best.pt`, else `last.pt`) on the dataset's whole test protocol, plain and MSER."""
    path = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    model = load_model(path, map_location=rt.device).to(rt.device)
    test_data = prepare_eval_data(cfg, dataset, None, progress=progress)
    results = evaluate_model(model, test_data, rt, cfg, mser=cfg.eval.mser, full=True, progress=progress)
    write_results(results, run_dir, title=f"{cfg.name}: {path.name}, {test_data.describe()}")
    return results


def _load_data(cfg: Config) -> VIDataset:
    if not cfg.data.root:
        raise ConfigError(f"'data.root' is empty: point it at the {cfg.data.dataset} dataset folder (data.root=DIR)")
    return load_dataset(cfg.data.dataset, cfg.data.root, trial=cfg.data.trial)


def _selection_split(cfg: Config, dataset: VIDataset) -> tuple[VIDataset, tuple[list, list] | None]:
    """Training records, and the held-out validation ids' (visible, infrared) records when configured."""
    if cfg.data.val_ids <= 0:
        return dataset, None
    rest, vis, ir = hold_out_ids(dataset, cfg.data.val_ids, seed=cfg.train.seed)
    return rest, (vis, ir)


def _new_run_dir(cfg: Config, run_dir: str | Path | None, rt: Runtime) -> Path:
    """`--out DIR`, else output_dir/name with -2, -3, ... appended when that already holds a run."""
    if run_dir is not None:
        out = Path(run_dir)
        if (out / "last.pt").exists():
            raise ConfigError(f"{out} already holds a run (last.pt); resume it with --resume {out} or pick another --out")
    else:
        base = Path(cfg.output_dir) / cfg.name
        out, n = base, 1
        while (out / "last.pt").exists() or (out / "config.yaml").exists():
            n += 1
            out = base.with_name(f"{base.name}-{n}")
    if rt.distributed:  # every rank must agree on the folder rank 0 chose
        holder = [str(out)]
        torch.distributed.broadcast_object_list(holder, src=0)
        out = Path(holder[0])
    out.mkdir(parents=True, exist_ok=True)
    return out


def _train_loader(cfg: Config, dataset: VIDataset, rt: Runtime, progress: bool) -> TrainLoader:
    """uint8 cache of the training images (built once, by rank 0 first) and the PK batches of this rank."""
    size = tuple(cfg.data.image_size)
    paths = [s.path for s in dataset.train]
    tag = f"{dataset.name}-train-{cfg.data.trial}"
    if rt.is_main:
        cache = ImageCache.build(paths, size, cfg.data.cache_dir or None, tag=tag, progress=progress)
    rt.barrier()
    if not rt.is_main:
        cache = ImageCache.build(paths, size, cfg.data.cache_dir or None, tag=tag, progress=False)
    sampler = PKSampler([s.label for s in dataset.train], cfg.data.p_size, cfg.data.k_size,
                        seed=cfg.train.seed, rank=rt.rank, world_size=rt.world_size)
    return TrainLoader(dataset.train, cache, sampler, num_workers=cfg.data.num_workers,
                       pin_memory=rt.device.type == "cuda")


def _build_model(cfg: Config, num_classes: int, rt: Runtime) -> MCJA:
    m = cfg.model
    model = MCJA(num_classes, depth=m.depth, last_stride=m.last_stride, mda_layers=m.mda_layers,
                 mda_contexts=m.mda_contexts, pretrained="none" if m.init_from else m.pretrained)
    if cfg.train.sync_bn:
        if not rt.distributed or rt.device.type != "cuda":
            raise ConfigError("'train.sync_bn: true' needs a multi-GPU torchrun launch")
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model.to(rt.device)

