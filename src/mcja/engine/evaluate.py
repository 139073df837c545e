"""A model on prepared test images: extract features, run the dataset's protocol from `mcja.evaluation`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from mcja.config import EvalConfig
from mcja.engine.eval_data import EvalData
from mcja.engine.features import extract_features
from mcja.engine.runtime import Runtime
from mcja.evaluation import MserParams, ProtocolRun, choose_mser, find_protocol, run_protocol


def evaluate_model(model: torch.nn.Module, data: EvalData, rt: Runtime, batch_size: int = 128,
                   mser: MserParams | None = None, full: bool = True, progress: bool = False,
                   keep_features: bool = False) -> dict[str, Any]:
    """Plain-ranking results (and, with `mser`, MSER re-ranked ones, kept apart) of `model` on `data`.

    `full=False` evaluates only the setting used for model selection (SYSU-MM01 all-search single-shot).
    `keep_features` adds {"visible": [V, N, D], "infrared": [1, N, D]} under "features" (figures, verification).
    """
    vis = extract_features(model, data.visible, rt, batch_size, views=4 if mser else 1, desc="visible features",
                           progress=progress)
    ir = extract_features(model, data.infrared, rt, batch_size, views=1, desc="infrared features", progress=progress)
    visible, infrared = data.sides(vis, ir)
    run = ProtocolRun(perm=data.perm, trials=data.trials, full=full)
    out: dict[str, Any] = {"protocol": data.protocol, "label": data.label,
                           "plain": run_protocol(data.protocol, visible.first_view(), infrared, None, run)}
    if mser:  # minutes on the real datasets: show the trials going by
        out["mser"] = run_protocol(data.protocol, visible, infrared, mser, replace(run, progress=progress))
        out["mser_params"] = mser.describe()
    if keep_features:
        out["features"] = {"visible": vis, "infrared": ir}
    return out


def selection_score(results: dict[str, Any]) -> float:
    """The plain rank-1 that selects the best epoch (SYSU-MM01: all-search single-shot; else the mean of rows)."""
    return find_protocol(results["protocol"]).selection_score(results["plain"])


def mser_settings(cfg: EvalConfig, protocol_name: str) -> MserParams:
    """MSER's parameters for a protocol: `eval.mser_preset` (auto: the protocol's own), then any of
    `eval.mser_k1`, `eval.mser_k2`, `eval.mser_lambda` that are set."""
    return choose_mser(cfg.mser_preset, cfg.mser_k1 or None, cfg.mser_k2 or None,
                       cfg.mser_lambda if cfg.mser_lambda >= 0 else None, auto=find_protocol(protocol_name).mser)
