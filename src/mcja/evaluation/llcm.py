"""LLCM with the DEEN authors' protocol: 10 trials; trial t seeds Python's `random` with t and picks one image
per (identity, camera) for the gallery, visiting ids in ascending order, cameras in ascending order and each
folder's files in sorted order; a gallery image with the query's id and camera is excluded.

Both directions use all test images of one modality as queries and a sampled gallery of the other.
"""

from __future__ import annotations

import os
import random
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from mcja.evaluation._arrays import as_views, labels
from mcja.evaluation.evaluate import mean_over_trials, pair_distance
from mcja.evaluation.metrics import rank_metrics


def llcm_trial_gallery(gallery_paths: Sequence[str | os.PathLike], gallery_ids: Any, gallery_cams: Any, trial: int) -> np.ndarray:
    """Indices (ascending) of the images trial `trial` puts in the gallery: one per (id, camera)."""
    ids = labels(gallery_ids, "gallery_ids", len(gallery_paths))
    cams = labels(gallery_cams, "gallery_cams", len(gallery_paths))
    names = np.array([os.path.basename(os.fspath(p)) for p in gallery_paths], dtype=object)
    order = np.lexsort((names, cams, ids))  # the folder walk: id, then camera, then file name
    key = ids[order] * 1000 + cams[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    rng = random.Random(trial)
    picks = [order[s + rng.randrange(n)] for s, n in zip(starts, sizes)]  # one draw per folder, as random.choice
    return np.sort(np.array(picks, dtype=np.int64))


def _direction(q: tuple, g: tuple, trials: int, rerank: str | None, params: dict[str, Any],
               bar: Any = None) -> dict[str, Any]:
    """Mean over trials of one direction; q and g are (feats, ids, cams, paths); `bar` steps once per trial."""
    g_views = as_views(g[0])
    g_ids, g_cams = labels(g[1], "gallery ids", g_views.shape[1]), labels(g[2], "gallery cams", g_views.shape[1])
    per_trial = []
    for t in range(trials):
        pick = llcm_trial_gallery(g[3], g_ids, g_cams, t)
        dist = pair_distance(q[0], g_views[:, torch.as_tensor(pick, device=g_views.device)], rerank, **params)
        per_trial.append(rank_metrics(dist, q[1], q[2], g_ids[pick], g_cams[pick], exclude="id_camera"))
        if bar is not None:
            bar.update()
    return mean_over_trials(per_trial)


def evaluate_llcm(
    visible_feats: Any, visible_ids: Any, visible_cams: Any, visible_paths: Sequence[str | os.PathLike],
    infrared_feats: Any, infrared_ids: Any, infrared_cams: Any, infrared_paths: Sequence[str | os.PathLike],
    trials: int = 10, rerank: str | None = None, progress: bool = False, **rerank_params: Any,
) -> dict[str, dict[str, Any]]:
    """Both directions, keyed "infrared->visible" and "visible->infrared": means over trials + "trials".
    `progress` shows a bar of the trials of both directions."""
    as_views(visible_feats, "visible"), as_views(infrared_feats, "infrared")  # refuse NaN / inf, naming the side
    vis = (visible_feats, visible_ids, visible_cams, visible_paths)
    nir = (infrared_feats, infrared_ids, infrared_cams, infrared_paths)
    with tqdm(total=2 * trials, desc=f"{'MSER ' if rerank else ''}LLCM trials", unit="trial", leave=False,
              disable=not progress) as bar:
        return {
            "infrared->visible": _direction(nir, vis, trials, rerank, rerank_params, bar),
            "visible->infrared": _direction(vis, nir, trials, rerank, rerank_params, bar),
        }
