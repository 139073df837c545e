"""RegDB: both directions of one split, and the table over the 10 splits (mean and standard deviation).

No camera filtering: the two modalities are the two cameras, so every gallery image is eligible.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from mcja.evaluation.evaluate import mean_std_over_trials, pair_protocol
from mcja.evaluation.mser import MSER_PRESETS, MserParams, resolve_mser
from mcja.evaluation.side import Side

DIRECTIONS = ("visible->thermal", "thermal->visible")


def regdb_protocol(visible: Side, thermal: Side, mser: MserParams | None = None,
                   progress: bool = False) -> dict[str, dict[str, Any]]:
    """Metrics of one split in both directions, keyed "visible->thermal" and "thermal->visible"; every gallery
    image is eligible (the sides' cameras are ignored). `progress` shows a bar of the two directions."""
    vis = visible.with_cams(np.zeros(len(visible), dtype=np.int64))
    th = thermal.with_cams(np.ones(len(thermal), dtype=np.int64))
    pairs = {"visible->thermal": (vis, th), "thermal->visible": (th, vis)}
    bar = tqdm(pairs.items(), desc=f"{'MSER ' if mser else ''}RegDB directions", leave=False, disable=not progress)
    return {name: pair_protocol(q, g, mser, exclude="none") for name, (q, g) in bar}


def evaluate_regdb(
    visible_feats: Any, visible_ids: Any, thermal_feats: Any, thermal_ids: Any, rerank: str | None = None,
    progress: bool = False, **rerank_params: Any
) -> dict[str, dict[str, Any]]:
    """`regdb_protocol` on arrays. With rerank="mser" the RegDB preset (MSER_PRESETS["regdb"], no masking) applies
    unless `rerank_params` override it."""
    mser = resolve_mser(rerank, rerank_params, MSER_PRESETS["regdb"])
    visible, thermal = Side.of(visible_feats, visible_ids, name="visible"), Side.of(thermal_feats, thermal_ids, name="thermal")
    return regdb_protocol(visible, thermal, mser, progress)


def regdb_summary(splits: Sequence[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per direction: mean and standard deviation of each metric over the splits, plus the per-split results."""
    if not splits:
        raise ValueError("no RegDB splits to summarise")
    return {d: mean_std_over_trials([s[d] for s in splits]) for d in DIRECTIONS}
