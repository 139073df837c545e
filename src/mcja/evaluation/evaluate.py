"""One query set against one gallery: distances (cosine or MSER re-ranked) and the metrics; trial aggregation."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import torch

from mcja.evaluation._arrays import as_views, to_numpy
from mcja.evaluation.metrics import rank_metrics, view0_cosine_distance
from mcja.evaluation.mser import MserParams, mser_rerank, resolve_mser
from mcja.evaluation.side import Side

METRIC_KEYS = ("r1", "r5", "r10", "r20", "mAP", "mINP")  # every protocol's results carry these, in percent


def pair_distance(query_feats: Any, gallery_feats: Any, rerank: str | None = None, **rerank_params: Any) -> np.ndarray:
    """Distances [Nq, Ng] as a numpy array: -cosine of view 0, or MSER over all views (`rerank="mser"`, SYSU-MM01's
    parameters unless `rerank_params` say otherwise)."""
    return _distance(as_views(query_feats, "query"), as_views(gallery_feats, "gallery"), resolve_mser(rerank, rerank_params))


def _distance(q: torch.Tensor, g: torch.Tensor, mser: MserParams | None) -> np.ndarray:
    """pair_distance of checked [V, N, D] features (a Side's: checked once, when the side was made)."""
    if mser is None:
        warn_view0(q.shape[0], g.shape[0])
        return to_numpy(view0_cosine_distance(q, g))
    return to_numpy(mser_rerank(q, g, **mser.as_kwargs()))


def warn_view0(query_views: int, gallery_views: int) -> None:
    """Warn that plain ranking of multi-view features ([V, N, D], e.g. `extract --views mser`) uses view 0 only."""
    if max(query_views, gallery_views) > 1:
        warnings.warn(f"features with several views (query {query_views}, gallery {gallery_views}) and rerank=None: "
                      "plain ranking uses view 0 (the original image) only; pass rerank='mser' to use every view",
                      UserWarning, stacklevel=3)


def pair_protocol(query: Side, gallery: Side, mser: MserParams | None = None, exclude: str = "camera") -> dict[str, Any]:
    """r1, r5, r10, r20, mAP, mINP (percent) and the CMC curve of one query side against one gallery side.

    Plain cosine ranking of view 0, or MSER re-ranking over all views with `mser`'s parameters. Gallery items from
    the query's camera are dropped (`exclude`: "camera", "id_camera" or "none").
    """
    dist = _distance(query.feats, gallery.feats, mser)
    return rank_metrics(dist, query.ids, query.cams, gallery.ids, gallery.cams, exclude)


def evaluate_pair(
    query_feats: Any,
    query_ids: Any,
    query_cams: Any,
    gallery_feats: Any,
    gallery_ids: Any,
    gallery_cams: Any,
    rerank: str | None = None,
    exclude: str = "camera",
    **rerank_params: Any,
) -> dict[str, Any]:
    """`pair_protocol` on arrays: features [N, D] or [V, N, D] (view 0 = original image), numpy or torch on any
    device; rerank="mser" re-ranks with SYSU-MM01's parameters unless `rerank_params` (k1, k2, ...) say otherwise."""
    mser = resolve_mser(rerank, rerank_params)
    query, gallery = Side.of(query_feats, query_ids, query_cams, name="query"), Side.of(gallery_feats, gallery_ids,
                                                                                        gallery_cams, name="gallery")
    return pair_protocol(query, gallery, mser, exclude)


def both_directions(visible: Side, infrared: Side, mser: MserParams | None = None,
                    exclude: str = "camera") -> dict[str, dict[str, Any]]:
    """Infrared queries against the visible side and the reverse, keyed "infrared->visible" and "visible->infrared"."""
    return {"infrared->visible": pair_protocol(infrared, visible, mser, exclude),
            "visible->infrared": pair_protocol(visible, infrared, mser, exclude)}


def _pad(cmc: np.ndarray, length: int) -> np.ndarray:
    """A CMC curve extended to `length` with its last value."""
    return np.concatenate([cmc, np.full(length - len(cmc), cmc[-1])]) if len(cmc) < length else cmc


def mean_over_trials(trials: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each metric (and of the CMC curve) over trials; the per-trial dicts kept under "trials"."""
    if not trials:
        raise ValueError("no trials to average")
    length = max(len(t["cmc"]) for t in trials)
    out: dict[str, Any] = {k: float(np.mean([t[k] for t in trials])) for k in METRIC_KEYS}
    out["cmc"] = np.mean([_pad(t["cmc"], length) for t in trials], axis=0)
    out["trials"] = list(trials)
    return out


def mean_std_over_trials(trials: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and (population) standard deviation of each metric over trials, e.g. RegDB's 10 splits."""
    out = mean_over_trials(trials)
    out["std"] = {k: float(np.std([t[k] for t in trials])) for k in METRIC_KEYS}
    return out
