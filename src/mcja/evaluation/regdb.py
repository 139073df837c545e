"""RegDB: both directions of one split, and the table over the 10 splits (mean and standard deviation).

No camera filtering: the two modalities are the two cameras, so every gallery image is eligible.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from mcja.evaluation._arrays import as_views
from mcja.evaluation.evaluate import evaluate_pair, mean_std_over_trials

DIRECTIONS = ("visible->thermal", "thermal->visible")
REGDB_MSER = {"k1": 50, "k2": 10, "lambda_value": 0.2, "neighbours": "all"}


def evaluate_regdb(
    visible_feats: Any, visible_ids: Any, thermal_feats: Any, thermal_ids: Any, rerank: str | None = None,
    progress: bool = False, **rerank_params: Any
) -> dict[str, dict[str, Any]]:
    """Metrics of one split in both directions, keyed "visible->thermal" and "thermal->visible".

    With rerank="mser" the RegDB settings (k1 50, k2 10, lambda 0.2, no masking) apply unless overridden.
    `progress` shows a bar of the two directions.
    """
    params = {**REGDB_MSER, **rerank_params} if rerank == "mser" else rerank_params
    nv, nt = as_views(visible_feats, "visible").shape[1], as_views(thermal_feats, "thermal").shape[1]
    vis = (visible_feats, visible_ids, np.zeros(nv, dtype=np.int64))
    th = (thermal_feats, thermal_ids, np.ones(nt, dtype=np.int64))
    pairs = {"visible->thermal": (vis, th), "thermal->visible": (th, vis)}
    bar = tqdm(pairs.items(), desc=f"{'MSER ' if rerank else ''}RegDB directions", leave=False, disable=not progress)
    return {name: evaluate_pair(*q, *g, rerank, exclude="none", **params) for name, (q, g) in bar}


def regdb_summary(splits: Sequence[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per direction: mean and standard deviation of each metric over the splits, plus the per-split results."""
    if not splits:
        raise ValueError("no RegDB splits to summarise")
    return {d: mean_std_over_trials([s[d] for s in splits]) for d in DIRECTIONS}
