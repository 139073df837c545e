"""A whole training run: check the data, build everything, train, evaluate the selected model, summarise."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mcja.config import Config, apply_override, config_changes, config_from_dict
from mcja.data.cache import ImageCache
from mcja.data.loader import TrainLoader
from mcja.data.records import VIDataset
from mcja.data.registry import load_dataset
from mcja.data.sampler import PKSampler
from mcja.data.validation import hold_out_ids
from mcja.engine.checkpoint import load_training_state, selected_checkpoint
from mcja.engine.eval_data import EvalData, prepare_eval_data
from mcja.engine.evaluate import evaluate_model, mser_settings
from mcja.engine.logger import RunLogger
from mcja.engine.rundir import locked_run_folder, new_run_folder
from mcja.engine.runtime import Runtime, inference_runtime, seed_everything, setup_runtime, teardown_runtime
from mcja.engine.trainer import Trainer
from mcja.errors import ConfigError
from mcja.evaluation.report import write_results
from mcja.models import MCJA, load_model
from mcja.models.finetune import init_from_checkpoint
from mcja.models.reader import Checkpoint
from mcja.utils.io import atomic_write_text, ensure_writable_dir
from mcja.visualize.protocol import report_extras

# Settings a resumed run cannot change: the weights, the data and the sampler position depend on them.
FIXED_ON_RESUME = ("model.", "data.dataset", "data.trial", "data.image_size", "data.val_ids", "data.p_size",
                   "data.k_size", "train.seed")


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

    @property
    def selected(self) -> Path:
        """The checkpoint the final evaluation used (best.pt, else last.pt)."""
        return selected_checkpoint(self.run_dir)


def train(cfg: Config, run_dir: str | Path | None = None, resume: str | Path | None = None,
          progress: bool = True, resume_state: Checkpoint | None = None) -> RunSummary:
    """Train per `cfg` (or resume the run in `resume`, from `resume_state` if already read); returns the summary."""
    rt = setup_runtime(cfg.train.device, cfg.train.amp, cfg.train.channels_last)
    try:
        if resume is None:
            return _train(cfg, rt, run_dir, None, progress)
        with locked_run_folder(resume, rt) as out:  # a second train/resume on this folder refuses
            state = resume_state or load_training_state(out / "last.pt")
            return _train(cfg, rt, out, state, progress)
    finally:
        teardown_runtime(rt)


def resume_config(run_dir: str | Path | Checkpoint, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config a run was started with (from its `last.pt`, or that file already read), with `key=value`
    overrides applied; overrides that would change what the checkpoint holds are refused (ones repeating its
    value, as a rerun `mcja ablate` gives them, pass)."""
    ckpt = run_dir if isinstance(run_dir, Checkpoint) else load_training_state(Path(run_dir) / "last.pt")
    cfg = config_from_dict(ckpt.content["config"], source=str(ckpt.path))
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        before = cfg.to_dict()
        apply_override(cfg, item)
        if key.startswith(FIXED_ON_RESUME) and config_changes(before, cfg.to_dict()):
            raise ConfigError(f"{item}: '{key}' cannot change when resuming {ckpt.path.parent} (the checkpoint was "
                              f"trained with it); start a new run instead")
    return cfg


def resume(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = (), progress: bool = True) -> RunSummary:
    """Continue the run in `run_dir` from its `last.pt` (overrides such as optim.epochs=200 apply)."""
    state = load_training_state(Path(run_dir) / "last.pt")  # read once, weights-only
    return train(resume_config(state, list(overrides)), resume=run_dir, progress=progress, resume_state=state)


def _train(cfg: Config, rt: Runtime, run_dir: str | Path | None, resume: Checkpoint | None,
           progress: bool) -> RunSummary:
    started = time.perf_counter()
    if resume is None:  # an unwritable output fails before any work
        ensure_writable_dir(run_dir or cfg.output_dir, "--out" if run_dir else "output_dir")
    dataset = _load_data(cfg)  # a wrong root fails here, before any model is built
    train_set, val = _selection_split(cfg, dataset)
    seed_everything(cfg.train.seed + rt.rank, cfg.train.deterministic)
    loader = _train_loader(cfg, train_set, rt, progress)
    eval_data = eval_images(cfg, dataset, val, progress) if rt.is_main else None
    model = _build_model(cfg, train_set.num_train_ids, rt)  # missing ImageNet weights fail before any folder exists
    # a resumed run has its own weights in last.pt; a bad init_from checkpoint fails before any folder exists
    notes = init_from_checkpoint(model, cfg.model.init_from, cfg.model.reset_mda) \
        if cfg.model.init_from and resume is None else []
    folder = nullcontext(Path(run_dir)) if resume is not None else new_run_folder(cfg, run_dir, rt)
    with folder as out:
        logger = RunLogger(out, enabled=rt.is_main, tensorboard=cfg.train.tensorboard)
        for note in notes:
            logger.echo(f"init_from: {note}")
        if rt.is_main:
            atomic_write_text(out / "config.yaml", cfg.to_yaml())  # on resume too: it records what runs now
        trainer = Trainer(cfg=cfg, rt=rt, run_dir=out, model=model, train_loader=loader, eval_data=eval_data,
                          logger=logger, progress=progress)
        if resume is not None:
            _resume(trainer, resume, logger)
        else:
            logger.echo(f"run {out}: {dataset.name} ({len(train_set.train)} training images, "
                        f"{train_set.num_train_ids} ids), {trainer.steps_per_epoch()} steps/epoch on {rt.describe()}")
        state = trainer.fit()
        logger.close()
        summary = RunSummary(run_dir=out, epochs=state.epoch, best_epoch=state.best_epoch,
                             best_score=state.best_score, seconds=time.perf_counter() - started)
        if rt.is_main and eval_data is not None:
            summary.results = final_evaluation(cfg, dataset, out, rt, progress)
        rt.barrier()
    return summary


def _resume(trainer: Trainer, ckpt: Checkpoint, logger: RunLogger) -> None:
    """Restore the trainer from `last.pt`, drop log records written after it, and say what resumed."""
    changes = config_changes(config_from_dict(ckpt.content["config"]).to_dict(), trainer.cfg.to_dict())
    trainer.resume_from(ckpt)
    state = trainer.state
    dropped = logger.keep_until(state.epoch, state.global_step)
    logger.log({"kind": "resume", "epoch": state.epoch, "global_step": state.global_step, "changed": changes})
    said = f" with {', '.join(f'{k} {a} -> {b}' for k, (a, b) in changes.items())}" if changes else ""
    kept = f"; dropped {dropped} log records written after that checkpoint" if dropped else ""
    logger.echo(f"resumed {ckpt.path.parent} {state.where()}{said}{kept}")


def final_evaluation(cfg: Config, dataset: VIDataset, run_dir: Path, rt: Runtime, progress: bool) -> dict[str, Any]:
    """The selected model (`best.pt`, else `last.pt`) on the dataset's whole test protocol, plain and MSER."""
    path = selected_checkpoint(run_dir)
    model = load_model(path, map_location=rt.device).to(rt.device)
    test_data = eval_images(cfg, dataset, None, progress)
    mser = mser_settings(cfg.eval, test_data.protocol) if cfg.eval.mser else None
    results = evaluate_model(model, test_data, inference_runtime(rt, cfg.train.amp), cfg.eval.batch_size, mser=mser,
                             full=True, progress=progress, keep_features=True)
    write_results(results, run_dir, title=f"{cfg.name}: {path.name}, {test_data.describe()}")
    # the same verification section as `mcja test` (figures: `mcja test --figures N` on best.pt)
    report_extras(run_dir, results.pop("features"), test_data.vis, test_data.ir, results, protocol=test_data.protocol)
    return results


def eval_images(cfg: Config, dataset: VIDataset, val: tuple[list, list] | None, progress: bool) -> EvalData:
    """The selection set (`val`: held-out ids) or the test set of `dataset`, cached at the configured size."""
    return prepare_eval_data(dataset, val, cfg.data.image_size, cfg.data.cache_dir or None, cfg.eval.trials,
                             progress=progress)


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

