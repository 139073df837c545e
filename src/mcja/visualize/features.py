"""`mcja visualize FEATURES.npz ...`: verification and figures from `mcja extract` files (any model's features)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mcja.data.records import INFRARED, VISIBLE
from mcja.errors import DatasetError
from mcja.evaluation import evaluate_pair
from mcja.evaluation.verification import TARGET_FPRS

NEEDED = ("features", "paths", "pids", "modalities")


def read_feature_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of one `mcja extract` npz (never unpickled); DatasetError naming the file when one is missing."""
    try:
        with np.load(path) as data:  # allow_pickle stays False: a user file never runs code
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{path}: not a readable npz feature file ({err})") from None
    missing = [k for k in NEEDED if k not in arrays]
    if missing:
        raise DatasetError(f"{path}: needs {', '.join(NEEDED)} (missing {', '.join(missing)}); extract a dataset "
                           "split or a folder/CSV whose ids and modalities are known")
    feats = arrays["features"]
    if feats.ndim not in (2, 3):
        raise DatasetError(f"{path}: 'features' has shape {list(feats.shape)}, expected [images, dim] or "
                           "[views, images, dim]")
    arrays["features"] = feats = feats[0] if feats.ndim == 3 else feats  # view 0: the image itself
    for key in (*NEEDED[1:], "cameras"):  # one entry per image in every column, or nothing lines up
        column = arrays.get(key)
        if column is not None and (column.ndim != 1 or len(column) != len(feats)):
            raise DatasetError(f"{path}: '{key}' has shape {list(column.shape)}, expected one entry per image "
                               f"({len(feats)}, as 'features')")
    if "cameras" not in arrays:  # unknown cameras: one per modality, so no cross-modality pair is excluded
        arrays["cameras"] = arrays["modalities"] + 1
    return arrays


def merge_feature_files(paths: Sequence[str | os.PathLike]) -> dict[str, np.ndarray]:
    """The files' images, concatenated (e.g. a query file and a gallery file)."""
    parts = [read_feature_file(p) for p in paths]
    dims = {p["features"].shape[1] for p in parts}
    if len(dims) > 1:
        raise DatasetError(f"{', '.join(map(str, paths))}: features of different sizes {sorted(dims)}")
    return {k: np.concatenate([p[k] for p in parts]) for k in ("features", "paths", "pids", "cameras", "modalities")}


def split_modalities(data: dict[str, np.ndarray], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(visible, infrared) columns with their features; DatasetError unless both modalities are present."""
    out = []
    for modality, name in ((VISIBLE, "visible"), (INFRARED, "infrared")):
        keep = data["modalities"] == modality
        if not keep.any():
            raise DatasetError(f"{source}: no {name} images; verification and figures compare the two modalities")
        out.append({k: v[keep] for k, v in data.items()})
    return out[0], out[1]


def visualize_features(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, figures: int = 5,
                       fprs: Sequence[float] = TARGET_FPRS) -> dict[str, Any]:
    """Infrared-to-visible metrics, verification and (figures > 0) the figures, into out_dir/results.md."""
    from mcja.evaluation.report import write_report
    from mcja.visualize.protocol import report_extras

    source = ", ".join(map(str, paths))
    vis, ir = split_modalities(merge_feature_files(paths), source)
    results = {"plain": {"infrared->visible": evaluate_pair(ir["features"], ir["pids"], ir["cameras"],
                                                            vis["features"], vis["pids"], vis["cameras"])}}
    out_dir = Path(out_dir)
    write_report(out_dir / "results", f"features of {source}", results["plain"])
    features = {"visible": torch.from_numpy(vis["features"]).unsqueeze(0),
                "infrared": torch.from_numpy(ir["features"]).unsqueeze(0)}
    extras = report_extras(out_dir, features, vis, ir, results, figures, fprs=fprs)
    return {**results, **extras, "out": out_dir}


