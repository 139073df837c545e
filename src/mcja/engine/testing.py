"""`mcja test`: a trained model through a dataset's whole test protocol, with results.md and its extras."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mcja.config import Config, load_config


def test_checkpoint(checkpoint: str | Path, dataset: str, root: str | Path, trial: int = 1, mser: bool = False,
                    out: str | Path | None = None, image_size: Sequence[int] | None = None, batch_size: int = 128,
                    device: str = "auto", trials: int = 10, progress: bool = True, amp: str = "auto", figures: int = 0,
                    fprs: Sequence[float] = (1e-4, 1e-3, 1e-2), mser_preset: str = "auto") -> dict[str, Any]:
    """The dataset's whole test protocol for a trained model (ours or a reference-code state dict).

    Adds a verification section (TPR and threshold at each of `fprs`) to results.md; `figures=N` also draws the
    figures for N queries beside it. `amp`: auto (bf16 on CUDA and on CPUs with native bf16), bf16 or off (float32).
    `mser_preset`: MSER's parameters (auto: the dataset's; else a name in mcja.evaluation.MSER_PRESETS).
    """
    from mcja.data.registry import load_dataset
    from mcja.engine.eval_data import prepare_eval_data
    from mcja.engine.evaluate import evaluate_model, mser_settings
    from mcja.engine.runtime import setup_runtime
    from mcja.evaluation.report import write_results
    from mcja.models import load_model
    from mcja.models.reader import read_checkpoint
    from mcja.utils.io import ensure_writable_dir

    settings = (trial, image_size, batch_size, trials, mser_preset)
    _test_config(None, dataset, str(root), *settings)  # bad arguments fail before any read
    out_dir = ensure_writable_dir(out or Path(checkpoint).parent / f"test-{dataset}",
                                  "--out" if out else "--out (default: a folder beside the checkpoint)")
    ckpt = read_checkpoint(checkpoint)  # once, weights-only: a foreign file cannot run code
    cfg = _test_config(ckpt.config, dataset, str(root), *settings)
    data = load_dataset(dataset, str(root), trial=trial)  # a wrong root fails before the model is built
    rt = setup_runtime(device, amp=amp, channels_last=True, inference=True)
    model = load_model(ckpt).to(rt.device)
    eval_data = prepare_eval_data(data, None, cfg.data.image_size, cfg.data.cache_dir or None, trials,
                                  progress=progress)
    params = mser_settings(cfg.eval, eval_data.protocol) if mser else None
    results = evaluate_model(model, eval_data, rt, batch_size, mser=params, full=True, progress=progress,
                             keep_features=True)
    written = write_results(results, out_dir, title=f"{Path(checkpoint).name} on {eval_data.describe()}")
    from mcja.visualize.protocol import report_extras

    extras = report_extras(out_dir, results.pop("features"), eval_data.vis, eval_data.ir, results, figures,
                           eval_data.protocol, model.float(), cfg.data.image_size, fprs)
    for key in ("verification", "figures", "notes"):  # notes: figures left out or fewer than asked, and why
        results[key] = extras[key]
    return {**results, "written": [str(p) for p in written]}


def _test_config(stored: dict[str, Any] | None, dataset: str, root: str, trial: int,
                 image_size: Sequence[int] | None, batch_size: int, trials: int, mser_preset: str) -> Config:
    """Evaluation settings: the checkpoint's image size when it has a config, else the dataset's defaults."""
    from mcja.config import config_from_dict, validate

    cfg = config_from_dict(stored) if stored else load_config(dataset if dataset != "folder" else "sysu")
    cfg.data.dataset, cfg.data.root, cfg.data.trial = dataset, root, trial
    if image_size:
        cfg.data.image_size = list(image_size)
    cfg.eval.batch_size, cfg.eval.trials, cfg.eval.mser_preset = batch_size, trials, mser_preset
    validate(cfg)  # the arguments are settings too: image size, batch size and trials in range
    return cfg


test_checkpoint.__test__ = False  # type: ignore[attr-defined]  # a verb, not a pytest test, whatever its name says
