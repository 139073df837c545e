"""The training loop: PK batches, batched VIMC on the device, ID + CMR losses, evaluation, checkpoints."""

from __future__ import annotations

import dataclasses
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from mcja.config import Config
from mcja.data.augment import TrainAugment
from mcja.data.loader import TrainLoader
from mcja.engine.checkpoint import save_best, save_training_state
from mcja.engine.eval_data import EvalData
from mcja.engine.evaluate import evaluate_model, mser_settings, selection_score
from mcja.engine.logger import RunLogger
from mcja.engine.runtime import Runtime, inference_runtime, set_rng_state
from mcja.errors import Interrupted, MCJAError, NonFiniteError
from mcja.evaluation import find_protocol
from mcja.evaluation.report import metrics_only
from mcja.losses import CMRLoss, identity_loss
from mcja.models import MCJA
from mcja.models.reader import Checkpoint


class TrainingInterrupted(Interrupted):
    """Ctrl-C / SIGTERM: the state was saved and the run can be resumed (`resume`: the command that does it)."""

    def __init__(self, stopped: str, run_dir: Path, resume: str | None = None):
        self.stopped, self.run_dir = stopped, run_dir
        self.resume = resume or f"mcja train --resume {run_dir}"
        super().__init__(f"{stopped}. Resume with: {self.resume}")

    def resumed_by(self, command: str) -> TrainingInterrupted:
        """The same stop, resumed by another command (e.g. the `mcja ablate` that trained this run)."""
        return TrainingInterrupted(self.stopped, self.run_dir, command)


class NonFiniteLoss(MCJAError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainState:
    """Progress counters saved in every checkpoint."""

    epoch: int = 0  # completed epochs
    step: int = 0  # completed steps inside `epoch` (non-zero only in a mid-epoch save)
    global_step: int = 0
    best_score: float = -1.0
    best_epoch: int = -1
    elapsed: float = 0.0  # training seconds, summed over resumed sessions

    def where(self) -> str:
        """Where training stands, as the stop and resume messages both say it: 'at epoch 2, step 5' (epoch 2 after
        its 5th step), 'after epoch 1' or 'at the start'."""
        if self.step:
            return f"at epoch {self.epoch + 1}, step {self.step}"
        return f"after epoch {self.epoch}" if self.epoch else "at the start"


@dataclass
class Trainer:
    """Everything one training process holds; `fit()` runs the remaining epochs."""

    cfg: Config
    rt: Runtime
    run_dir: Path
    model: MCJA
    train_loader: TrainLoader
    eval_data: EvalData | None
    logger: RunLogger
    progress: bool = True
    augment: TrainAugment = field(init=False)
    state: TrainState = field(default_factory=TrainState)

    def __post_init__(self) -> None:
        a = self.cfg.augment
        self.augment = TrainAugment(
            size=tuple(self.cfg.data.image_size), padding=a.padding, color_jitter=a.color_jitter,
            wg=a.vimc_wg, cc=a.vimc_cc, sj=a.vimc_sj, flip=a.flip, crop=a.crop, erase=a.random_erase,
        )
        self.generator = torch.Generator().manual_seed(self.cfg.train.seed * 1009 + self.rt.rank)
        self.net = self._wrap(self.model)
        self.optimizer = torch.optim.Adam(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=self.cfg.optim.lr, weight_decay=self.cfg.optim.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(self.cfg.optim.lr_steps), gamma=self.cfg.optim.lr_gamma
        )
        self.scaler = torch.amp.GradScaler(self.rt.device.type, enabled=self.rt.amp_dtype == torch.float16)
        self.cmr = CMRLoss(strength=self.cfg.loss.cmr_strength) if self.cfg.loss.cmr else None
        self._stop_requested = False

    def _wrap(self, model: MCJA) -> torch.nn.Module:
        """channels-last, DDP and torch.compile as configured."""
        if self.rt.channels_last:
            model.to(memory_format=torch.channels_last)
        net: torch.nn.Module = model
        if self.rt.distributed:
            ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
            net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=not self.cfg.loss.id
            )
        if self.cfg.train.compile:
            net = torch.compile(net)  # type: ignore[assignment]
        return net

    # ----------------------------------------------------------------- checkpoints
    def resume_from(self, ckpt: Checkpoint) -> None:
        """Restore model, optimizer, scheduler, scaler, counters and RNG states from `last.pt` (read once), then
        apply the config's optimiser settings, which a resume may override."""
        saved = ckpt.content
        self.model.load_state_dict(saved["state_dict"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        self.state = TrainState(**saved["train_state"])
        generators = saved["augment_rng"]
        self.generator.set_state(generators[self.rt.rank] if self.rt.rank < len(generators) else generators[0])
        set_rng_state(saved["rng"])
        self._apply_optim_settings()

    def _apply_optim_settings(self) -> None:
        """lr, weight decay, milestones and gamma from the config, with the lr decayed for the epochs done, so an
        override on resume really runs (MultiStepLR: lr = base * gamma ** (milestones passed))."""
        o = self.cfg.optim
        sched = self.scheduler
        sched.milestones = Counter(o.lr_steps)
        sched.gamma = o.lr_gamma
        sched.base_lrs = [o.lr for _ in self.optimizer.param_groups]
        passed = sum(1 for m in o.lr_steps if m <= sched.last_epoch)
        for group in self.optimizer.param_groups:
            group.update(initial_lr=o.lr, lr=o.lr * o.lr_gamma ** passed, weight_decay=o.weight_decay)
        sched._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def save(self) -> None:
        """Write `last.pt` atomically (main process; other ranks contribute their augmentation RNG)."""
        states = self._gather_generator_states()
        if self.rt.is_main:
            save_training_state(
                self.run_dir / "last.pt", self.model, self.cfg,
                optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                scaler=self.scaler.state_dict(), train_state=dataclasses.asdict(self.state), augment_rng=states,
            )

    def _kept_checkpoints(self) -> str:
        """What a stopped run leaves: the checkpoints that exist, or that none was written."""
        kept = [p for p in (self.run_dir / "last.pt", self.run_dir / "best.pt") if p.exists()]
        if not kept:
            return "No checkpoint was written yet"
        return f"Kept: {' and '.join(str(p) for p in kept)} (last saved after epoch {self.state.epoch})"

    def _gather_generator_states(self) -> list[torch.Tensor]:
        state = self.generator.get_state()
        if not self.rt.distributed:
            return [state]
        gathered: list[Any] = [None] * self.rt.world_size
        dist.all_gather_object(gathered, state)
        return gathered

    # ----------------------------------------------------------------- training
    def fit(self) -> TrainState:
        """Train from the current state to `optim.epochs`, evaluating and checkpointing on the way."""
        if self.state.epoch == 0 and self.state.step == 0 and self.cfg.eval.start == 0:
            self._evaluate(epoch=0)
        with _stop_on_signals(self):
            while self.state.epoch < self.cfg.optim.epochs:
                self._train_epoch()
                self.scheduler.step()
                self.state.epoch += 1
                self.state.step = 0
                if self._should_evaluate(self.state.epoch):
                    self._evaluate(self.state.epoch)
                self.save()
        return self.state

    def _train_epoch(self) -> None:
        epoch, start = self.state.epoch, self.state.step
        self.train_loader.sampler.set_epoch(epoch)
        total = self.steps_per_epoch()
        bar = tqdm(total=total, initial=start, desc=f"epoch {epoch + 1}/{self.cfg.optim.epochs}",
                   disable=not (self.rt.is_main and self.progress), leave=False, dynamic_ncols=True)
        self.net.train()
        began, seen, sums = time.perf_counter(), 0, {"loss": 0.0, "id": 0.0, "cmr": 0.0}
        for step, batch in zip(range(start, total), self._batches(start)):
            losses = self._train_step(batch, epoch, step)
            self.state.step = step + 1
            self.state.global_step += 1
            seen += batch["images"].shape[0]
            for key in sums:
                sums[key] += losses[key]
            bar.update(1)
            bar.set_postfix(loss=f"{losses['loss']:.3f}", id=f"{losses['id']:.3f}", cmr=f"{losses['cmr']:.3f}")
            if self.state.global_step % self.cfg.train.log_every == 0:
                self.logger.log({"kind": "train", "epoch": epoch + 1, "step": step + 1,
                                 "global_step": self.state.global_step, "lr": self.scheduler.get_last_lr()[0],
                                 **{f"loss_{k}" if k != "loss" else k: v for k, v in losses.items()}},
                                step=self.state.global_step)
            if self._stop_now():
                bar.close()
                self.state.elapsed += time.perf_counter() - began
                self.save()
                raise TrainingInterrupted(f"stopped {self.state.where()}; state saved to {self.run_dir / 'last.pt'}",
                                          self.run_dir)
        bar.close()
        took = time.perf_counter() - began
        self.state.elapsed += took
        n = total - start
        if n <= 0:  # resumed from a save after this epoch's last step: nothing ran, so nothing to average
            self.logger.echo(f"epoch {epoch + 1:>3}/{self.cfg.optim.epochs}  its {total} steps ran before the resume")
            return
        self.logger.log({"kind": "epoch", "epoch": epoch + 1, "lr": self.scheduler.get_last_lr()[0],
                         "loss": sums["loss"] / n, "loss_id": sums["id"] / n, "loss_cmr": sums["cmr"] / n,
                         "images_per_s": seen / max(took, 1e-9), "seconds": took}, step=self.state.global_step)
        self.logger.echo(f"epoch {epoch + 1:>3}/{self.cfg.optim.epochs}  loss {sums['loss'] / n:.4f} "
                         f"(id {sums['id'] / n:.4f}, cmr {sums['cmr'] / n:.4f})  {seen / max(took, 1e-9):.1f} img/s")

    def steps_per_epoch(self) -> int:
        """Batches per epoch: the PK sampler's count, capped by `train.steps_per_epoch`."""
        n = len(self.train_loader)
        cap = self.cfg.train.steps_per_epoch
        return min(n, cap) if cap > 0 else n

    def _batches(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        return iter(self.train_loader.iter_from(start))

    def _train_step(self, batch: dict[str, torch.Tensor], epoch: int, step: int) -> dict[str, float]:
        """One optimisation step; returns the loss values."""
        rt = self.rt
        labels = batch["labels"].to(rt.device, non_blocking=True)
        modalities = batch["modalities"].to(rt.device, non_blocking=True)
        images = self.augment(batch["images"].to(rt.device, non_blocking=True), modalities, self.generator)
        with rt.autocast():
            features, logits = self.net(rt.to_input(images))
        # Both losses in float32 (spec), outside autocast.
        loss_id = identity_loss(logits.float(), labels) if self.cfg.loss.id else features.new_zeros(())
        loss_cmr = self.cmr(features.float(), labels, modalities) if self.cmr else features.new_zeros(())
        loss = loss_id + loss_cmr
        loss_id, loss_cmr = loss_id.detach(), loss_cmr.detach()
        if not torch.isfinite(loss):
            raise NonFiniteLoss(
                f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} (id {loss_id.item():.4g}, "
                f"cmr {loss_cmr.item():.4g}); stopped without saving. {self._kept_checkpoints()} (try a lower optim.lr)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {"loss": loss.item(), "id": loss_id.item(), "cmr": loss_cmr.item()}

    # ----------------------------------------------------------------- evaluation
    def _should_evaluate(self, epoch: int) -> bool:
        """From the config alone, so every rank agrees (only rank 0 holds the evaluation data)."""
        every, last = self.cfg.eval.every, epoch == self.cfg.optim.epochs
        if epoch < self.cfg.eval.start:
            return False
        return last or (every > 0 and epoch % every == 0)

    def _evaluate(self, epoch: int) -> None:
        """Plain-ranking evaluation on the selection set (main process); keeps `best.pt`. Non-finite features (a
        diverged model) stop every rank, keeping the last good checkpoint.

        Before training (epoch 0) the whole protocol is evaluated, like the reference's initial check.
        """
        failure = ""
        if self.rt.is_main and self.eval_data is not None:
            try:
                self._evaluate_main(epoch)
            except NonFiniteError as err:  # its scores would look valid and mean nothing
                failure = str(err)
        if self._any_rank(bool(failure)):
            raise NonFiniteLoss(f"evaluation after epoch {epoch}: {failure or 'non-finite features on rank 0'}; "
                                f"stopped without saving this epoch. {self._kept_checkpoints()} (try a lower optim.lr)")
        self.rt.barrier()

    def _evaluate_main(self, epoch: int) -> None:
        before = epoch == 0
        rt = inference_runtime(self.rt, self.cfg.train.amp)  # test-time numerics (bf16 on a bf16 CPU with auto)
        mser = mser_settings(self.cfg.eval, self.eval_data.protocol) if before and self.cfg.eval.mser_at_start else None
        results = evaluate_model(self.model, self.eval_data, rt, self.cfg.eval.batch_size, mser=mser, full=before,
                                 progress=self.progress)
        score = selection_score(results)
        self.logger.log({"kind": "eval", "epoch": epoch, "score_r1": score, **metrics_only(results)},
                        step=self.state.global_step)
        selected = epoch > 0 and score > self.state.best_score
        if selected:
            self.state.best_score, self.state.best_epoch = score, epoch
            save_best(self.run_dir / "best.pt", self.model, self.cfg, epoch=epoch, score=score, results=results)
        best = ("selected: best.pt is now this epoch" if selected else
                f"best.pt stays epoch {self.state.best_epoch}" if self.state.best_epoch > 0 else "before training")
        self.logger.echo(f"eval after epoch {epoch}: rank-1 {score:.2f}%{_per_direction(results)}  "
                         f"({self.eval_data.describe()}; {best})")

    # ----------------------------------------------------------------- signals
    def request_stop(self) -> None:
        self._stop_requested = True

    def _stop_now(self) -> bool:
        """All ranks agree to stop at the same step (a stop on any rank stops all)."""
        return self._any_rank(self._stop_requested)

    def _any_rank(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any (one process: `flag`)."""
        if self.rt.distributed:
            t = torch.tensor([int(flag)], device=self.rt.device if self.rt.device.type == "cuda" else "cpu")
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item())
        return flag


def _per_direction(results: dict[str, Any]) -> str:
    """' (mean of visible->thermal 81.20, thermal->visible 79.90)' when the score averages several directions."""
    plain = results["plain"]
    if find_protocol(results["protocol"]).select_first or len(plain) < 2:
        return ""
    parts = [f"{name} {row['r1']:.2f}" for name, row in plain.items()]
    return f" (mean of {', '.join(parts)})"


class _stop_on_signals:
    """SIGINT/SIGTERM ask the trainer to save and stop after the current step; a second Ctrl-C aborts."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.trainer._stop_requested:
            raise KeyboardInterrupt
        self.trainer.logger.echo("stopping after this step and saving (press Ctrl-C again to abort)...")
        self.trainer.request_stop()

    def __enter__(self) -> "_stop_on_signals":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

