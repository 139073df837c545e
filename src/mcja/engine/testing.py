"""`mcja test`: a trained model through a dataset's whole test protocol, with results.md and its extras."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mcja.config import Config, load_config


def test_checkpoint(checkpoint: str | Path, dataset: str, root: str | Path, trial: int = 1, mser: bool = False,
                    out: str | Path | None = None, image_size: Sequence[int] | None = None, batch_size: int = 128,
                    device: str = "auto", trials: int = 10, progress: bool = True, amp: str = "auto", figures: int = 0,
                    fprs: Sequence[float] = (1e-4, 1e-3, 1e-2), mser_preset: str | None = None,
                    mser_k1: int | None = None, mser_k2: int | None = None, mser_lambda: float | None = None
                    ) -> dict[str, Any]:
    """The dataset's whole test protocol for a trained model (ours or a reference-code state dict).

    Adds a verification section (TPR and threshold at each of `fprs`) to results.md; `figures=N` also draws the
    figures for N queries beside it. `amp`: auto (bf16 on CUDA and on CPUs with native bf16), bf16 or off (float32).
    `mser_preset`: MSER's parameters (None or auto: the dataset's; else a name in mcja.evaluation.MSER_PRESETS),
    with any of `mser_k1`, `mser_k2`, `mser_lambda` over it. Only these apply: a preset means that preset, whatever
    MSER settings the checkpoint was trained with.
    """
    from mcja.data.registry import load_dataset
    from mcja.engine.eval_data import prepare_eval_data
    from mcja.engine.evaluate import evaluate_model, mser_settings
    from mcja.engine.runtime import setup_runtime
    from mcja.evaluation import refuse_unused_mser
    from mcja.evaluation.report import write_results
    from mcja.models import load_model
    from mcja.models.reader import read_checkpoint
    from mcja.utils.io import ensure_writable_dir

    if not mser:
        refuse_unused_mser("--mser", mser_preset, mser_k1, mser_k2, mser_lambda)
    eval_settings = {"batch_size": batch_size, "trials": trials, "mser_preset": mser_preset or "auto",
                     "mser_k1": mser_k1 or 0, "mser_k2": mser_k2 or 0,  # 0 / -1: the preset's
                     "mser_lambda": -1.0 if mser_lambda is None else float(mser_lambda)}
    settings = (trial, image_size, eval_settings)
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
                 image_size: Sequence[int] | None, eval_settings: dict[str, Any]) -> Config:
    """Evaluation settings: the checkpoint's image size when it has a config, else the dataset's defaults; the
    `eval.*` settings of this command (none kept from training)."""
    from mcja.config import config_from_dict, validate

    cfg = config_from_dict(stored) if stored else load_config(dataset if dataset != "folder" else "sysu")
    cfg.data.dataset, cfg.data.root, cfg.data.trial = dataset, root, trial
    if image_size:
        cfg.data.image_size = list(image_size)
    for key, value in eval_settings.items():
        setattr(cfg.eval, key, value)
    validate(cfg)  # the arguments are settings too: image size, batch size and trials in range
    return cfg


test_checkpoint.__test__ = False  # type: ignore[attr-defined]  # a verb, not a pytest test, whatever its name says
