"""`mcja demo`: the whole method on a synthetic SYSU-MM01-layout set, on CPU, in minutes, with a report folder."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mcja import __version__
from mcja.config import Config, load_config
from mcja.data.registry import load_dataset
from mcja.data.synthetic import make_synthetic
from mcja.engine.checkpoint import selected_checkpoint
from mcja.engine.eval_data import EvalData
from mcja.engine.features import extract_features
from mcja.engine.logger import read_metrics
from mcja.engine.run import RunSummary, eval_images, train
from mcja.engine.runtime import setup_runtime
from mcja.evaluation import pair_distance, sysu_query_cams, sysu_trial_gallery
from mcja.evaluation.report import DEMO_HEADLINE, demo_markdown, metrics_only, print_demo_summary
from mcja.models import load_model
from mcja.utils.io import atomic_path, atomic_write_json, atomic_write_text, ensure_writable_dir
from mcja.visualize.pictures import ranked_list_pictures


@dataclass
class DemoSettings:
    """The synthetic data and the run; the rest of the training settings come from `configs/demo.yaml`."""

    ids: int = 96
    images_per_camera: int = 3
    size: tuple[int, int] = (128, 64)
    seed: int = 0
    epochs: int | None = None  # None: demo.yaml's


def run_demo(out: str | Path = "mcja-demo", settings: DemoSettings | None = None, overrides: Sequence[str] = (),
             progress: bool = True) -> dict[str, Any]:
    """Generate data, train with VIMC + MDA + CMR + ID loss, evaluate (plain and MSER), write `out/report/`."""
    s = settings or DemoSettings()
    out = Path(out)
    ensure_writable_dir(out, "--out")  # before minutes of data generation and training
    started = time.perf_counter()
    data_root = make_synthetic("sysu", out / "data", ids=s.ids, seed=s.seed, size=s.size,
                               images_per_camera=s.images_per_camera, progress=progress)
    cfg = _demo_config(out, data_root, s, overrides)
    run_dir = out / "run"
    if (run_dir / "last.pt").exists():  # a finished or interrupted earlier demo: start afresh
        _clear(run_dir)
    summary = train(cfg, run_dir=run_dir, progress=progress)
    report = write_demo_report(cfg, summary, out / "report", seconds=time.perf_counter() - started)
    print_demo_summary(report, out / "report")
    return report


def _demo_config(out: Path, data_root: Path, s: DemoSettings, overrides: Sequence[str]) -> Config:
    extra = [f"data.root={data_root}", f"data.image_size=[{s.size[0]},{s.size[1]}]", f"data.cache_dir={out / 'cache'}",
             "eval.start=0", "eval.mser_at_start=true", f"train.seed={s.seed}"]
    if s.epochs is not None:
        extra.append(f"optim.epochs={s.epochs}")
    return load_config("demo", [*extra, *overrides])


def _clear(run_dir: Path) -> None:
    for name in ("last.pt", "best.pt", "metrics.jsonl", "config.yaml", "results.md", "results.json"):
        (run_dir / name).unlink(missing_ok=True)


def write_demo_report(cfg: Config, summary: RunSummary, report_dir: Path, seconds: float) -> dict[str, Any]:
    """report.md, metrics.json, curves.png and ranked-list PNGs of the selected model."""
    report_dir.mkdir(parents=True, exist_ok=True)
    records = read_metrics(summary.run_dir)
    before = next(r for r in records if r.get("kind") == "eval" and r["epoch"] == 0)
    after = metrics_only(summary.results)
    pictures = _ranked_lists(cfg, summary.run_dir, report_dir)
    curves = _curves(records, report_dir / "curves.png")
    report = {
        "before": before["plain"][DEMO_HEADLINE], "after": after["plain"][DEMO_HEADLINE],
        "before_mser": before.get("mser", {}).get(DEMO_HEADLINE), "after_mser": after.get("mser", {}).get(DEMO_HEADLINE),
        "results_before": {k: before[k] for k in ("plain", "mser") if k in before}, "results_after": after,
        "epochs": summary.epochs, "best_epoch": summary.best_epoch, "seconds": seconds,
        "history": [r for r in records if r.get("kind") in ("epoch", "eval")],
        "machine": _machine(), "mcja_version": __version__, "config": cfg.to_dict(),
    }
    atomic_write_json(report_dir / "metrics.json", report)
    atomic_write_text(report_dir / "report.md", demo_markdown(report, summary.best_epoch, pictures, curves))
    return report


def _ranked_lists(cfg: Config, run_dir: Path, report_dir: Path, queries: int = 6) -> list[Path]:
    """Ranked lists of a few random infrared queries against trial 1's all-search single-shot gallery."""
    rt = setup_runtime(cfg.train.device, cfg.train.amp, inference=True)  # the numerics of the reported metrics
    model = load_model(selected_checkpoint(run_dir)).to(rt.device)
    data: EvalData = eval_images(cfg, load_dataset("sysu", cfg.data.root), None, progress=False)
    vis = extract_features(model, data.visible, rt, cfg.eval.batch_size, progress=False)[0]
    ir = extract_features(model, data.infrared, rt, cfg.eval.batch_size, progress=False)[0]
    v, i = data.vis, data.ir
    mask = sysu_trial_gallery(list(v["paths"]), v["cameras"], v["pids"], data.perm, "all", 1, trial=0)
    dist = pair_distance(ir, vis[torch.as_tensor(np.flatnonzero(mask))])
    qcams = sysu_query_cams(i["cameras"])  # the same-location rule, as in the metrics
    return ranked_list_pictures(report_dir, dist, list(i["paths"]), i["pids"], list(v["paths"][mask]),
                                v["pids"][mask], queries=queries, k=10, query_cams=qcams,
                                gallery_cams=v["cameras"][mask], seed=cfg.train.seed)


def _curves(records: list[dict[str, Any]], path: Path) -> Path | None:
    """Loss per epoch and rank-1/mAP per evaluation as one PNG (needs matplotlib; skipped without it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    epochs = [r for r in records if r.get("kind") == "epoch"]
    evals = [r for r in records if r.get("kind") == "eval"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    x = [r["epoch"] for r in epochs]
    for key, label in (("loss", "total"), ("loss_id", "identity (CE)"), ("loss_cmr", "CMR")):
        ax1.plot(x, [r[key] for r in epochs], marker="o", markersize=3, label=label)
    ax1.set(xlabel="epoch", ylabel="loss", title="training loss")
    ax1.legend()
    ex = [r["epoch"] for r in evals]
    for key, label in (("r1", "rank-1"), ("mAP", "mAP")):
        ax2.plot(ex, [r["plain"][DEMO_HEADLINE][key] for r in evals], marker="o", markersize=3, label=label)
    ax2.set(xlabel="epoch", ylabel="%", title=f"SYSU protocol, {DEMO_HEADLINE} (plain)", ylim=(0, 100))
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"
