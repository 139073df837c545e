"""FeatureExtractor: a trained MCJA as a function from images to test-time features, preprocessed as testing is.

Preprocessing (the test protocol's): RGB, PIL bilinear resize to the model's (H, W), /255, ImageNet mean/std;
the feature is the BN-neck output, L2-normalised unless `normalize=False`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from mcja.data.images import load_rgb, resize_rgb
from mcja.engine.features import embed_batch
from mcja.engine.runtime import Runtime, inference_runtime, resolve_device
from mcja.errors import ConfigError, DatasetError, NonFiniteError
from mcja.evaluation._arrays import nonfinite_rows
from mcja.models import load_model
from mcja.models.reader import read_checkpoint, resolve_image_size

MSER_VIEWS = 4
# Tolerance on the 0..1 range of float inputs: resampling can overshoot by a hair.
_RANGE_SLACK = 1e-3


@dataclass
class Extraction:
    """Features of the images that could be read: [N, D] or [4, N, D]; `kept` indexes the input list."""

    features: torch.Tensor
    kept: list[int]
    skipped: list[str] = field(default_factory=list)  # one line per unreadable image, naming it


def parse_views(views: int | str) -> int:
    """1 (the image as is) or 4 (`"mser"`: the image, then R, G and B copied to all channels)."""
    if views in (1, "1", None):
        return 1
    if views in (MSER_VIEWS, str(MSER_VIEWS), "mser"):
        return MSER_VIEWS
    raise ConfigError(f"views: expected 1 or 'mser', got {views!r}")


class FeatureExtractor:
    """Images -> float32 features on the CPU: [B, D], or [4, B, D] with `views="mser"`.

    Call it on paths, PIL images, uint8 arrays [H, W, 3] / [B, H, W, 3], or tensors [B, 3, H, W]: uint8 0..255,
    or float RGB in 0..1 already at the model's size. Other sizes are resized with PIL bilinear, as in testing.
    `model` is a checkpoint path (ours or the reference code's) or a module, which is moved to `device` in eval mode.
    """

    def __init__(
        self,
        model: str | os.PathLike | torch.nn.Module,
        device: str | torch.device | None = None,
        batch_size: int = 64,
        image_size: Sequence[int] | None = None,
        normalize: bool = True,
        views: int | str = 1,
        amp: str = "auto",
        num_workers: int = 4,
    ) -> None:
        self.views = parse_views(views)
        if int(batch_size) < 1:
            raise ConfigError(f"batch size: expected a positive number, got {batch_size}")
        self.batch_size, self.normalize, self.num_workers = int(batch_size), bool(normalize), int(num_workers)
        dev = _device(device)
        # The engine's test-time numerics, as `mcja test` uses them: with amp=auto, bf16 autocast on CUDA and on
        # CPUs with native bf16 instructions, float32 elsewhere; amp="off" forces float32.
        self.runtime = inference_runtime(Runtime(device=dev), amp)
        ckpt = None if isinstance(model, torch.nn.Module) else read_checkpoint(model)  # once, weights-only
        self.checkpoint: Path | None = ckpt.path if ckpt else None
        self.model = (load_model(ckpt) if ckpt else model).to(dev).eval()
        if self.runtime.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.image_size = resolve_image_size(ckpt, image_size)

    @property
    def feature_dim(self) -> int | None:
        """Length D of one feature (None for a model that does not say)."""
        return getattr(self.model, "feature_dim", None)

    def __repr__(self) -> str:
        source = self.checkpoint or type(self.model).__name__
        h, w = self.image_size
        return f"FeatureExtractor({source}, {h}x{w}, views={self.views}, device={self.runtime.device})"

    def __call__(self, images: Any, progress: bool = False) -> torch.Tensor:
        """Features of one image or a batch (see the class docstring for the accepted inputs)."""
        if isinstance(images, (str, os.PathLike, Image.Image)):
            images = [images]
        if isinstance(images, (np.ndarray, torch.Tensor)):
            batch = _as_batch(images)
            starts = range(0, batch.shape[0], self.batch_size)
            bar = tqdm(starts, desc="features", unit="batch", leave=False, disable=not progress)
            chunks = [embed_batch(self.model, self._fit(batch[s : s + self.batch_size]), self.runtime, self.views)
                      for s in bar]
            return self._finish(chunks, self.views)
        return self.extract(list(images), progress=progress).features

    def extract(self, items: Sequence[Any], skip_bad: bool = False, progress: bool = False,
                desc: str = "features", views: int | str | None = None) -> Extraction:
        """Features of a list of paths / PIL images / uint8 arrays, in batches; unreadable files raise DatasetError,
        or with `skip_bad` are left out and listed in `skipped`. `views` overrides the extractor's for this call."""
        n_views = self.views if views is None else parse_views(views)
        if not items:
            raise DatasetError("no images to extract features from")
        kept: list[int] = []
        skipped: list[str] = []
        chunks = []
        # closed on errors too (a missing image): the error line then starts on a clean line
        with tqdm(total=len(items), desc=desc, unit="img", leave=False, disable=not progress) as bar:
            for start, decoded in self._decoded_batches(items):
                good = []
                for i, image in enumerate(decoded, start):
                    if isinstance(image, DatasetError):
                        if not skip_bad:
                            raise image
                        skipped.append(str(image))
                    else:
                        kept.append(i)
                        good.append(image)
                if good:
                    batch = torch.from_numpy(np.stack(good)).permute(0, 3, 1, 2).contiguous()
                    chunks.append(embed_batch(self.model, batch, self.runtime, n_views))
                bar.update(len(decoded))
        if not chunks:
            raise DatasetError(f"none of the {len(items)} images could be read (first: {skipped[0]})")
        return _drop_nonfinite(Extraction(self._finish(chunks, n_views), kept, skipped), items, skip_bad)

    def _decoded_batches(self, items: Sequence[Any]) -> Iterator[tuple[int, list[np.ndarray | DatasetError]]]:
        """(start, decoded images of items[start : start + batch]) per batch, decoded by a thread pool."""
        pool = ThreadPoolExecutor(self.num_workers) if self.num_workers > 1 else None
        try:
            for start in range(0, len(items), self.batch_size):
                part = items[start : start + self.batch_size]
                # PIL releases the GIL while decoding and resizing, so threads overlap the file reads.
                yield start, list((pool.map if pool else map)(self._decode, part))
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)

    def _decode(self, item: Any) -> np.ndarray | DatasetError:
        """One item as uint8 [H, W, 3] at the model's size; a file that cannot be read gives its DatasetError."""
        try:
            return resize_rgb(_as_pil(item), self.image_size)
        except DatasetError as err:
            return err

    def _fit(self, batch: torch.Tensor) -> torch.Tensor:
        """A [b, 3, h, w] batch at the model's size: uint8 resized with PIL (as in testing), float checked."""
        if tuple(batch.shape[-2:]) == self.image_size:
            return batch
        if batch.dtype != torch.uint8:
            h, w = self.image_size
            raise ValueError(f"float images must already be {h}x{w} (got {tuple(batch.shape[-2:])}); "
                             "pass uint8 images to have them resized")
        resized = [resize_rgb(Image.fromarray(img.permute(1, 2, 0).cpu().numpy()), self.image_size) for img in batch]
        return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).contiguous()

    def _finish(self, chunks: list[torch.Tensor], views: int) -> torch.Tensor:
        """[V, b, D] batches joined, L2-normalised if asked, and the view axis dropped for single-view extraction."""
        feats = torch.cat(chunks, dim=1)
        if self.normalize:
            feats = F.normalize(feats, dim=-1)
        return feats[0] if views == 1 else feats


def _drop_nonfinite(result: Extraction, items: Sequence[Any], skip_bad: bool) -> Extraction:
    """`result` without images whose features hold NaN/inf (listed in `skipped`) under `skip_bad`; else
    NonFiniteError naming them. A NaN feature would rank arbitrarily and write invalid JSON."""
    bad = nonfinite_rows(result.features if result.features.dim() == 3 else result.features[None])
    if not bad:
        return result
    names = [_name(items[result.kept[j]], result.kept[j]) for j in bad]
    if not skip_bad:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise NonFiniteError(f"the model gives NaN or infinite features for {len(bad)} of {len(result.kept)} images "
                             f"({shown}): a broken checkpoint or images it cannot handle (--skip-bad, skip_bad=True, leaves them out)")
    dropped = set(bad)
    good = [j for j in range(len(result.kept)) if j not in dropped]
    if not good:
        raise NonFiniteError(f"the model gives NaN or infinite features for all {len(bad)} readable images "
                             f"(first: {names[0]}): the checkpoint is broken")
    skipped = result.skipped + [f"{name}: NaN or infinite features" for name in names]
    return Extraction(result.features[..., good, :], [result.kept[j] for j in good], skipped)


def _name(item: Any, index: int) -> str:
    """How an error names an input image: its path, else its position in the list."""
    return str(item) if isinstance(item, (str, os.PathLike)) else f"image {index}"


def _device(name: str | torch.device | None) -> torch.device:
    """The torch device for `name` (None: auto, CUDA when available)."""
    return resolve_device(str(name) if name is not None else "auto", setting="device")


def _as_pil(item: Any) -> Image.Image:
    """A path, PIL image, uint8 array [H, W, 3] or uint8 tensor [3, H, W] as an RGB PIL image."""
    if isinstance(item, (str, os.PathLike)):
        return load_rgb(item)
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    if isinstance(item, torch.Tensor) and item.dtype == torch.uint8 and item.dim() == 3 and item.shape[0] == 3:
        item = item.permute(1, 2, 0).cpu().numpy()
    if isinstance(item, np.ndarray) and item.dtype == np.uint8 and item.ndim == 3 and item.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(item))
    raise TypeError(f"expected an image path, a PIL image or a uint8 RGB array [H, W, 3], got {_describe(item)}")


def _as_batch(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 arrays [H, W, 3] / [B, H, W, 3] or tensors [3, H, W] / [B, 3, H, W] as a tensor [B, 3, H, W]."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or images.shape[-1] != 3:
            raise ValueError(f"arrays must be uint8 RGB [H, W, 3] or [B, H, W, 3], got {_describe(images)}; "
                             "pass float images as torch tensors [B, 3, H, W] in 0..1")
        # torch cannot wrap read-only arrays (np.asarray of a PIL image is one) without copying them
        batch = torch.from_numpy(np.ascontiguousarray(images) if images.flags.writeable else images.copy())
        return (batch[None] if batch.dim() == 3 else batch).permute(0, 3, 1, 2)
    batch = images[None] if images.dim() == 3 else images
    if batch.dim() != 4 or batch.shape[1] != 3 or not (batch.dtype == torch.uint8 or batch.is_floating_point()):
        raise ValueError(f"tensors must be uint8 or float RGB [B, 3, H, W], got {_describe(images)}")
    if batch.is_floating_point() and batch.numel():
        lo, hi = float(batch.min()), float(batch.max())
        if lo < -_RANGE_SLACK or hi > 1 + _RANGE_SLACK:
            raise ValueError(f"float images must hold RGB values in 0..1 (found {lo:.3g}..{hi:.3g}); "
                             "pass uint8 for 0..255, and do not normalise them yourself")
    return batch.detach()


def _describe(x: Any) -> str:
    """Type, dtype and shape of an input, for error messages."""
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return f"{type(x).__name__} {x.dtype} of shape {tuple(x.shape)}"
    return type(x).__name__

