"""The verbs as Python functions: what `mcja train/test/...` call, usable from notebooks and scripts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from mcja.config import Config, load_config
from mcja.errors import ConfigError


def train(config: str | Path | Config = "sysu.yaml", overrides: Sequence[str] = (), out: str | Path | None = None,
          progress: bool = True) -> Any:
    """Train a model (one process, or one rank under torchrun); returns the run summary."""
    from mcja.engine.run import train as run_train

    cfg = config if isinstance(config, Config) else load_config(config, list(overrides))
    return run_train(cfg, run_dir=out, progress=progress)


def resume(run_dir: str | Path, overrides: Sequence[str] = (), progress: bool = True) -> Any:
    """Continue the run in `run_dir` from its `last.pt` (overrides such as optim.epochs=200 apply)."""
    from mcja.engine.checkpoint import load_training_state
    from mcja.engine.run import resume_config, train as run_train

    state = load_training_state(Path(run_dir) / "last.pt")  # read once, weights-only
    return run_train(resume_config(state, list(overrides)), resume=run_dir, progress=progress, resume_state=state)


def train_trials(config: str | Path = "regdb.yaml", trials: Sequence[int] = tuple(range(1, 11)),
                 overrides: Sequence[str] = (), out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """One model per RegDB split (the standard protocol), then the table of mean ± std over the splits.

    Without `out` the trials go to a fresh folder (output_dir/name, made unique); given `out` again, finished
    trials are kept and an interrupted one is resumed, so the loop can be continued.
    """
    from mcja.evaluation.report import read_results, write_trials_table
    from mcja.engine.run import train as run_train
    from mcja.engine.rundir import unused_folder

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


def test(checkpoint: str | Path, dataset: str, root: str | Path, trial: int = 1, mser: bool = False,
         out: str | Path | None = None, image_size: Sequence[int] | None = None, batch_size: int = 128,
         device: str = "auto", trials: int = 10, progress: bool = True, amp: str = "auto", figures: int = 0,
         fprs: Sequence[float] = (1e-4, 1e-3, 1e-2)) -> dict[str, Any]:
    """The dataset's whole test protocol for a trained model (ours or a reference-code state dict).

    Adds a verification section (TPR and threshold at each of `fprs`) to results.md; `figures=N` also draws the
    figures for N queries beside it. `amp`: auto (bf16 on CUDA and on CPUs with native bf16), bf16 or off (float32).
    """
    from mcja.data.registry import load_dataset
    from mcja.engine.eval_data import prepare_eval_data
    from mcja.engine.evaluate import evaluate_model, mser_settings
    from mcja.evaluation.report import write_results
    from mcja.engine.runtime import setup_runtime
    from mcja.models import load_model
    from mcja.models.reader import read_checkpoint
    from mcja.utils.io import ensure_writable_dir

    _test_config(None, dataset, str(root), trial, image_size, batch_size, trials)  # bad arguments fail before any read
    out_dir = ensure_writable_dir(out or Path(checkpoint).parent / f"test-{dataset}",
                                  "--out" if out else "--out (default: a folder beside the checkpoint)")
    ckpt = read_checkpoint(checkpoint)  # once, weights-only: a foreign file cannot run code
    cfg = _test_config(ckpt.config, dataset, str(root), trial, image_size, batch_size, trials)
    data = load_dataset(dataset, str(root), trial=trial)  # a wrong root fails before the model is built
    rt = setup_runtime(device, amp=amp, channels_last=True, inference=True)
    model = load_model(ckpt).to(rt.device)
    eval_data = prepare_eval_data(data, None, cfg.data.image_size, cfg.data.cache_dir or None, trial, trials,
                                  progress=progress)
    params = mser_settings(cfg.eval, eval_data.protocol) if mser else None
    results = evaluate_model(model, eval_data, rt, batch_size, mser=params, full=True, progress=progress,
                             keep_features=True)
    written = write_results(results, out_dir, title=f"{Path(checkpoint).name} on {eval_data.describe()}")
    from mcja.visualize.protocol import report_extras

    extras = report_extras(out_dir, results.pop("features"), eval_data.vis, eval_data.ir, results, figures,
                           eval_data.protocol, model.float(), cfg.data.image_size, fprs)
    results["verification"], results["figures"] = extras["verification"], extras["figures"]
    return {**results, "written": [str(p) for p in written]}


def _test_config(stored: dict[str, Any] | None, dataset: str, root: str, trial: int,
                 image_size: Sequence[int] | None, batch_size: int, trials: int) -> Config:
    """Evaluation settings: the checkpoint's image size when it has a config, else the dataset's defaults."""
    from mcja.config import config_from_dict, validate

    cfg = config_from_dict(stored) if stored else load_config(dataset if dataset != "folder" else "sysu")
    cfg.data.dataset, cfg.data.root, cfg.data.trial = dataset, root, trial
    if image_size:
        cfg.data.image_size = list(image_size)
    cfg.eval.batch_size, cfg.eval.trials = batch_size, trials
    validate(cfg)  # the arguments are settings too: image size, batch size and trials in range
    return cfg


def parse_trials(text: str) -> list[int]:
    """'1-10' -> [1..10]; '1,3,5' -> [1, 3, 5]."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", part)
        if not m:
            raise ConfigError(f"--trials '{text}': expected e.g. 1-10 or 1,3,5")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        out.extend(range(lo, hi + 1))
    if not out or min(out) < 1 or max(out) > 10:
        raise ConfigError(f"--trials '{text}': RegDB trials are 1..10")
    return out


def extract(checkpoint: str | Path, out: str | Path, **options: Any) -> dict[str, Any]:
    """Features of a folder, a list or a dataset split to an npz (see `mcja.inference.extract_file`)."""
    from mcja.inference import extract_file

    return extract_file(checkpoint, out, **options)


def search(checkpoint: str | Path, queries: Sequence[str | Path], gallery: str | Path, out: str | Path,
           **options: Any) -> dict[str, Any]:
    """Rank a gallery folder for each query image; JSON + contact sheets (see `mcja.inference.search_gallery`)."""
    from mcja.inference import search_gallery

    return search_gallery(checkpoint, queries, gallery, out, **options)


def index_build(out: str | Path, checkpoint: str | Path, **options: Any) -> dict[str, Any]:
    """Build (or resume) a gallery index of a folder or list of images (see `mcja.index.build_index`)."""
    from mcja.index import build_index

    return build_index(out, checkpoint, **options)


def index_update(index: str | Path, **options: Any) -> dict[str, Any]:
    """Extract an index's new and changed images, drop deleted ones (see `mcja.index.update_index`)."""
    from mcja.index import update_index

    return update_index(index, **options)


def index_search(index: str | Path, queries: Sequence[str | Path], out: str | Path, **options: Any) -> dict[str, Any]:
    """Rank an index for query images; JSON + contact sheets (see `mcja.index.search_index`)."""
    from mcja.index import search_index

    return search_index(index, queries, out, **options)


def export(checkpoint: str | Path, onnx_path: str | Path, **options: Any) -> dict[str, Any]:
    """The eval network as ONNX, parity-checked with onnxruntime (see `mcja.inference.export_onnx`)."""
    from mcja.inference import export_onnx

    return export_onnx(checkpoint, onnx_path, **options)


def demo(out: str | Path = "mcja-demo", overrides: Sequence[str] = (), progress: bool = True, **settings: Any) -> dict[str, Any]:
    """Synthetic data, training, evaluation and a report folder (see `mcja.demo.run_demo`)."""
    from mcja.demo import DemoSettings, run_demo

    return run_demo(out, DemoSettings(**settings), overrides, progress=progress)


def ablate(config: str | Path = "sysu.yaml", variants: str | Sequence[str] = "all", overrides: Sequence[str] = (),
           out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """The ablation variants trained one by one (resumable), then their comparison table (see `mcja.engine.ablation`)."""
    from mcja.engine.ablation import run_ablation

    return run_ablation(config, variants, overrides, out, progress=progress)
