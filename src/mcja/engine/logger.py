"""Run logs: `metrics.jsonl` (one JSON object a line), optional TensorBoard, console lines under tqdm."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mcja.errors import ConfigError
from mcja.utils.io import atomic_write_text, json_default


class RunLogger:
    """Appends records to `metrics.jsonl` (main process only) and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = False):
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self.writer = _tensorboard_writer(run_dir / "tensorboard") if (enabled and tensorboard) else None

    def log(self, record: dict[str, Any], step: int | None = None) -> None:
        """Write one record; numbers under nested dicts go to TensorBoard as `a/b` scalars."""
        if not self.enabled:
            return
        record = {"time": round(time.time(), 3), **record}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=json_default) + "\n")
        if self.writer is not None and step is not None:
            for key, value in _scalars(record):
                self.writer.add_scalar(key, value, step)

    def keep_until(self, epoch: int, global_step: int) -> int:
        """Drop the records written after the checkpoint a run resumes from (a kill leaves them behind), so the
        log matches what the resumed run repeats; returns how many were dropped."""
        if not self.enabled or not self.path.exists():
            return 0
        lines = [ln for ln in self.path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        kept = [ln for ln in lines if not _after(_parse(ln), epoch, global_step)]
        if len(kept) != len(lines):
            atomic_write_text(self.path, "".join(ln + "\n" for ln in kept))
        return len(lines) - len(kept)

    def echo(self, line: str) -> None:
        """Print a line without breaking progress bars."""
        if self.enabled:
            tqdm.write(line)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run's `metrics.jsonl` (empty if none)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _parse(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return {"kind": "torn"}  # the half-written last line of a killed run
    return record if isinstance(record, dict) else {}


def _after(record: dict[str, Any], epoch: int, global_step: int) -> bool:
    """True for a record of training that the checkpoint at (`epoch` done, `global_step`) does not hold."""
    kind = record.get("kind")
    if kind == "torn":
        return True
    if kind == "train":
        return record.get("global_step", 0) > global_step
    if kind in ("epoch", "eval"):
        return record.get("epoch", 0) > epoch
    return False


def _scalars(record: dict[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for key, value in record.items():
        if key in ("time", "epoch", "step", "global_step", "kind"):
            continue
        if isinstance(value, dict):
            out.extend(_scalars(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((f"{prefix}{key}", float(value)))
    return out


def _tensorboard_writer(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "'train.tensorboard: true' needs the tensorboard package: pip install 'mcja[tensorboard]'"
        ) from None
    return SummaryWriter(str(path))
