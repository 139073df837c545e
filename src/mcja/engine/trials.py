"""RegDB's standard protocol for training: one model per split, then the mean ± std table over the splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mcja.config import load_config


def train_trials(config: str | Path = "regdb.yaml", trials: Sequence[int] = tuple(range(1, 11)),
                 overrides: Sequence[str] = (), out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """One model per RegDB split, then the table of mean ± std over the splits.

    Without `out` the trials go to a fresh folder (output_dir/name, made unique); given `out` again, finished
    trials are kept and an interrupted one is resumed, so the loop can be continued.
    """
    from mcja.engine.run import resume
    from mcja.engine.run import train as run_train
    from mcja.engine.rundir import unused_folder
    from mcja.evaluation.report import read_results, write_trials_table

    base = load_config(config, list(overrides))
    root = Path(out) if out else unused_folder(Path(base.output_dir) / base.name)
    per_trial: dict[int, dict[str, Any]] = {}
    for trial in trials:
        run_dir = root / f"trial-{trial}"
        if (run_dir / "results.json").exists():  # finished earlier
            per_trial[trial] = read_results(run_dir)
        elif (run_dir / "last.pt").exists():  # interrupted earlier
            per_trial[trial] = resume(run_dir, progress=progress).results
        else:
            cfg = load_config(config, [*overrides, f"data.trial={trial}"])
            per_trial[trial] = run_train(cfg, run_dir=run_dir, progress=progress).results
    return write_trials_table(per_trial, root, title=f"{base.name}: {len(per_trial)} trials")
