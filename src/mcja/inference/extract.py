"""`mcja extract`: features of many images written to an npz file that `mcja.evaluation` reads directly.

The file holds `features` (float32 [N, D], L2-normalised; [4, N, D] with MSER views), `paths`, and
`pids`, `cameras`, `modalities` when known. Evaluating a query file against a gallery file:

    q, g = np.load("query.npz"), np.load("gallery.npz")
    evaluate_pair(q["features"], q["pids"], q["cameras"], g["features"], g["pids"], g["cameras"])
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mcja.engine.runtime import precision_name
from mcja.inference.extractor import FeatureExtractor
from mcja.inference.sources import ImageSet, image_source
from mcja.utils.io import atomic_path, ensure_writable_file


def atomic_savez(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """`np.savez` to exactly `path` (no added suffix), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    return Path(path)


def write_features(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    source: ImageSet,
    views: int | str = 1,
    batch_size: int = 64,
    image_size: Sequence[int] | None = None,
    device: str | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    amp: str = "auto",
) -> dict[str, Any]:
    """Embed `source`'s images with `checkpoint` and write the npz `out`; returns a summary dict
    (`amp`: auto, bf16 or off, as in FeatureExtractor)."""
    start = time.perf_counter()
    ensure_writable_file(out, "--out")
    extractor = FeatureExtractor(checkpoint, device=device, batch_size=batch_size, image_size=image_size, views=views,
                                 amp=amp)
    result = extractor.extract(source.paths, skip_bad=skip_bad, progress=progress, desc="extracting")
    kept = source.subset(result.kept)
    features = result.features.numpy().astype(np.float32, copy=False)
    atomic_savez(out, {"features": features, **kept.arrays()})
    return {
        "out": str(out),
        "images": len(kept.paths),
        "shape": list(features.shape),
        "labels": [name for name in ("pids", "cameras", "modalities") if getattr(kept, name) is not None],
        "skipped": result.skipped,
        "image_size": list(extractor.image_size),
        "device": str(extractor.runtime.device),
        "precision": precision_name(extractor.runtime.amp_dtype),
        "seconds": time.perf_counter() - start,
    }


def extract_file(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    images: str | None = None,
    list_file: str | None = None,
    dataset: str | None = None,
    root: str | None = None,
    split: str = "query",
    trial: int = 1,
    **options: Any,
) -> dict[str, Any]:
    """`mcja extract`: features of a folder, a list file or a dataset split (exactly one) to the npz `out`.

    `options` are write_features' (views, batch_size, image_size, device, skip_bad, progress, amp).
    """
    source = image_source(images=images, list_file=list_file, dataset=dataset, root=root, split=split, trial=trial)
    return write_features(checkpoint, out, source, **options)
