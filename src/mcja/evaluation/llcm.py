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
from tqdm.auto import tqdm

from mcja.evaluation._arrays import labels
from mcja.evaluation.evaluate import mean_over_trials, pair_protocol
from mcja.evaluation.mser import MSER_PRESETS, MserParams, resolve_mser
from mcja.evaluation.side import Side


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


def _direction(query: Side, gallery: Side, trials: int, mser: MserParams | None, bar: Any = None) -> dict[str, Any]:
    """Mean over trials of one direction; `bar` steps once per trial."""
    paths = gallery.require_paths("the LLCM protocol")
    per_trial = []
    for t in range(trials):
        pick = llcm_trial_gallery(paths, gallery.ids, gallery.cams, t)
        per_trial.append(pair_protocol(query, gallery.take(pick), mser, exclude="id_camera"))
        if bar is not None:
            bar.update()
    return mean_over_trials(per_trial)


def llcm_protocol(visible: Side, infrared: Side, trials: int = 10, mser: MserParams | None = None,
                  progress: bool = False) -> dict[str, dict[str, Any]]:
    """Both directions, keyed "infrared->visible" and "visible->infrared": means over trials + "trials"; each side
    needs its paths (the trials are drawn per folder). `progress` shows a bar of the trials of both directions."""
    with tqdm(total=2 * trials, desc=f"{'MSER ' if mser else ''}LLCM trials", unit="trial", leave=False,
              disable=not progress) as bar:
        return {
            "infrared->visible": _direction(infrared, visible, trials, mser, bar),
            "visible->infrared": _direction(visible, infrared, trials, mser, bar),
        }


def evaluate_llcm(
    visible_feats: Any, visible_ids: Any, visible_cams: Any, visible_paths: Sequence[str | os.PathLike],
    infrared_feats: Any, infrared_ids: Any, infrared_cams: Any, infrared_paths: Sequence[str | os.PathLike],
    trials: int = 10, rerank: str | None = None, progress: bool = False, **rerank_params: Any,
) -> dict[str, dict[str, Any]]:
    """`llcm_protocol` on arrays; rerank="mser" uses MSER_PRESETS["llcm"] unless `rerank_params` say otherwise."""
    mser = resolve_mser(rerank, rerank_params, MSER_PRESETS["llcm"])
    visible = Side.of(visible_feats, visible_ids, visible_cams, visible_paths, name="visible")
    infrared = Side.of(infrared_feats, infrared_ids, infrared_cams, infrared_paths, name="infrared")
    return llcm_protocol(visible, infrared, trials, mser, progress)
