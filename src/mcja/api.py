"""The verbs as Python functions: what `mcja train/test/...` call, usable from notebooks and scripts.

A thin façade: each function imports the package that does the work when called, so `import mcja.api` stays
light (no torch). `FeatureExtractor` and `GalleryIndex` resolve the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from mcja.config import Config, load_config


def __getattr__(name: str) -> Any:
    # The two classes the package exports, imported on first use (they pull in torch).
    if name == "FeatureExtractor":
        from mcja.inference import FeatureExtractor

        return FeatureExtractor
    if name == "GalleryIndex":
        from mcja.index import GalleryIndex

        return GalleryIndex
    raise AttributeError(f"module 'mcja.api' has no attribute {name!r}")


# ------------------------------------------------------------------------------------------------ training
def train(config: str | Path | Config = "sysu.yaml", overrides: Sequence[str] = (), out: str | Path | None = None,
          progress: bool = True) -> Any:
    """Train a model (one process, or one rank under torchrun); returns the run summary."""
    from mcja.engine.run import train as run_train

    cfg = config if isinstance(config, Config) else load_config(config, list(overrides))
    return run_train(cfg, run_dir=out, progress=progress)


def resume(run_dir: str | Path, overrides: Sequence[str] = (), progress: bool = True) -> Any:
    """Continue the run in `run_dir` from its `last.pt` (overrides such as optim.epochs=200 apply)."""
    from mcja.engine.run import resume as run_resume

    return run_resume(run_dir, list(overrides), progress=progress)


def train_trials(config: str | Path = "regdb.yaml", trials: Sequence[int] = tuple(range(1, 11)),
                 overrides: Sequence[str] = (), out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """One model per RegDB split, then the mean ± std table; `out` again continues (see `mcja.engine.trials`)."""
    from mcja.engine.trials import train_trials as run_trials

    return run_trials(config, trials, overrides, out, progress=progress)


def ablate(config: str | Path = "sysu.yaml", variants: str | Sequence[str] = "all", overrides: Sequence[str] = (),
           out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """The ablation variants trained one by one (resumable), then their comparison table (see `mcja.engine.ablation`)."""
    from mcja.engine.ablation import run_ablation

    return run_ablation(config, variants, overrides, out, progress=progress)


def demo(out: str | Path = "mcja-demo", overrides: Sequence[str] = (), progress: bool = True,
         **settings: Any) -> dict[str, Any]:
    """Synthetic data, training, evaluation and a report folder (see `mcja.demo.run_demo`)."""
    from mcja.demo import DemoSettings, run_demo

    return run_demo(out, DemoSettings(**settings), overrides, progress=progress)


# ------------------------------------------------------------------------------------------------ evaluation
def test(checkpoint: str | Path, dataset: str, root: str | Path, trial: int = 1, mser: bool = False,
         out: str | Path | None = None, image_size: Sequence[int] | None = None, batch_size: int = 128,
         device: str = "auto", trials: int = 10, progress: bool = True, amp: str = "auto", figures: int = 0,
         fprs: Sequence[float] = (1e-4, 1e-3, 1e-2), **mser_settings: Any) -> dict[str, Any]:
    """The dataset's whole test protocol for a trained model (ours or a reference-code state dict), with
    verification at `fprs` and `figures` per query set; `mser_settings`: mser_preset, mser_k1, mser_k2,
    mser_lambda (see `mcja.engine.testing.test_checkpoint`)."""
    from mcja.engine.testing import test_checkpoint

    return test_checkpoint(checkpoint, dataset, root, trial=trial, mser=mser, out=out, image_size=image_size,
                           batch_size=batch_size, device=device, trials=trials, progress=progress, amp=amp,
                           figures=figures, fprs=fprs, **mser_settings)


def visualize_features(features: Sequence[str | Path], out: str | Path, **options: Any) -> dict[str, Any]:
    """Metrics, verification and figures of `extract` files into out/results.md (see `mcja.visualize.features`)."""
    from mcja.visualize.features import visualize_features as run

    return run(features, out, **options)


def activation_maps(checkpoint: str | Path, images: Sequence[str | Path], out: str | Path,
                    image_size: Sequence[int] | None = None) -> Path:
    """Grad-CAM maps of image files as one PNG (see `mcja.visualize.activation.explain_checkpoint`)."""
    from mcja.visualize.activation import explain_checkpoint

    return explain_checkpoint(checkpoint, images, out, image_size)


# ------------------------------------------------------------------------------------------------ data and models
def data_info(dataset: str, root: str | Path, trial: int = 1, verify: bool = False) -> tuple[dict[str, Any], list[str]]:
    """A dataset's counts per split, modality and camera, and warnings (see `mcja.data.summary.dataset_info`)."""
    from mcja.data.summary import dataset_info
    from mcja.evaluation.sysu import sysu_gallery_sizes

    return dataset_info(dataset, str(root), trial=trial, verify=verify, gallery_sizes=sysu_gallery_sizes)


def make_synthetic(layout: str, out: str | Path, **options: Any) -> Path:
    """A small synthetic dataset in a benchmark's published layout (see `mcja.data.synthetic.make_synthetic`)."""
    from mcja.data.synthetic import make_synthetic as write

    return write(layout, out, **options)


def show_augmentations(dataset: str, root: str | Path, out: str | Path, **options: Any) -> dict[str, Any]:
    """A PNG grid of training images under each augmentation (see `mcja.visualize.augmentations`)."""
    from mcja.visualize.augmentations import augmentation_grid

    return augmentation_grid(dataset, root, out, **options)


def model_info(checkpoint: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """Size, shapes and forward time of a loaded or random-weight model (see `mcja.inference.model_info`)."""
    from mcja.inference.model_info import model_info as describe

    return describe(checkpoint, **options)


# ------------------------------------------------------------------------------------------------ inference
def extract(checkpoint: str | Path, out: str | Path, **options: Any) -> dict[str, Any]:
    """Features of a folder, a list or a dataset split to an npz (see `mcja.inference.extract_file`)."""
    from mcja.inference import extract_file

    return extract_file(checkpoint, out, **options)


def search(checkpoint: str | Path, queries: Sequence[str | Path], gallery: str | Path, out: str | Path,
           **options: Any) -> dict[str, Any]:
    """Rank a gallery folder for each query image; JSON + contact sheets (see `mcja.inference.search_gallery`)."""
    from mcja.inference import search_gallery

    return search_gallery(checkpoint, queries, gallery, out, **options)


def export(checkpoint: str | Path, onnx_path: str | Path, **options: Any) -> dict[str, Any]:
    """The eval network as ONNX, parity-checked with onnxruntime (see `mcja.inference.export_onnx`)."""
    from mcja.inference import export_onnx

    return export_onnx(checkpoint, onnx_path, **options)


# ------------------------------------------------------------------------------------------------ gallery index
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


def index_info(index: str | Path) -> dict[str, Any]:
    """What an index holds: identity, images, search structure (see `mcja.index.index_info`)."""
    from mcja.index import index_info as describe

    return describe(index)


def index_repair(index: str | Path, **options: Any) -> dict[str, Any]:
    """Check an index and rebuild its search structure from the stored features (see `mcja.index.repair_index`)."""
    from mcja.index import repair_index

    return repair_index(index, **options)


def serve(index: str | Path, on_ready: Callable[[dict[str, Any]], None] | None = None, **options: Any) -> None:
    """Serve an index over HTTP until stopped (see `mcja.serve.server.run_server`; needs the 'serve' extra)."""
    from mcja.serve.server import run_server

    run_server(index, on_ready=on_ready, **options)
