"""A model on a dataset's test protocol: cache the test images, extract features, call `mcja.evaluation`."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mcja.config import Config
from mcja.data.cache import ImageCache
from mcja.data.records import Sample, VIDataset, columns
from mcja.engine.features import extract_features
from mcja.engine.runtime import Runtime
from mcja.errors import DatasetError
from mcja.evaluation import (
    GALLERY_CAMS,
    REGDB_MSER,
    SYSU_SETTINGS,
    evaluate_llcm,
    evaluate_pair,
    evaluate_regdb,
    load_rand_perm,
    regdb_summary,
    sysu_protocol,
    sysu_query_cams,
    write_report,
)

TITLES = {"sysu": "SYSU-MM01", "regdb": "RegDB", "llcm": "LLCM", "pair": "cross-modality pair"}


@dataclass
class EvalData:
    """The cached test images of both modalities and what the protocol needs besides features."""

    protocol: str  # sysu | sysu-whole | regdb | llcm | pair
    label: str
    visible: ImageCache
    infrared: ImageCache
    vis: dict[str, np.ndarray]  # columns(): paths, pids, cameras, ...
    ir: dict[str, np.ndarray]
    perm: Any = None  # SYSU-MM01 rand_perm_cam
    trials: int = 10

    def describe(self) -> str:
        return f"{self.label}: {len(self.infrared)} infrared / {len(self.visible)} visible images"


def prepare_eval_data(cfg: Config, dataset: VIDataset, val: tuple[list[Sample], list[Sample]] | None,
                      progress: bool = True) -> EvalData:
    """The selection set (held-out training ids when `val` is given) or the dataset's test set, cached."""
    if val is not None:
        vis, ir, protocol = val[0], val[1], "pair"
        label, split = f"{dataset.name} validation ids", "val"
    else:
        vis, ir = dataset.test_visible, dataset.test_infrared
        protocol = dataset.name if dataset.name in ("sysu", "regdb", "llcm") else "pair"
        label, split = f"{TITLES.get(dataset.name, dataset.name)} test set", "test"
        if dataset.name == "regdb":
            label += f" (trial {cfg.data.trial})"
    if not vis or not ir:
        raise DatasetError(f"{dataset.root}: the {split} set needs images of both modalities "
                           f"(found {len(vis)} visible, {len(ir)} infrared)")
    perm = None
    if protocol == "sysu":
        perm = _sysu_perm(dataset)
        if perm is None:
            protocol, label = "sysu-whole", f"{label}, whole gallery (no rand_perm_cam.mat: not the standard trials)"
    size = tuple(cfg.data.image_size)
    cache_dir = cfg.data.cache_dir or None
    tag = f"{dataset.name}-{split}-{cfg.data.trial}"
    return EvalData(
        protocol=protocol, label=label, perm=perm, trials=cfg.eval.trials,
        visible=ImageCache.build([s.path for s in vis], size, cache_dir, tag=f"{tag}-visible", progress=progress),
        infrared=ImageCache.build([s.path for s in ir], size, cache_dir, tag=f"{tag}-infrared", progress=progress),
        vis=columns(vis), ir=columns(ir),
    )


def _sysu_perm(dataset: VIDataset) -> Any:
    """The gallery trials; None (with a warning) when exp/rand_perm_cam.mat is missing."""
    path = dataset.meta.get("rand_perm_cam")
    if not path or not Path(path).is_file():
        warnings.warn(f"{Path(dataset.root) / 'exp' / 'rand_perm_cam.mat'} is missing: evaluating against every visible "
                      "test image instead of the standard 10 gallery trials (copy the file from the SYSU-MM01 "
                      "evaluation code into exp/ for comparable figures)", stacklevel=2)
        return None
    return load_rand_perm(path)


def evaluate_model(model: torch.nn.Module, data: EvalData, rt: Runtime, cfg: Config, mser: bool = False,
                   full: bool = True, progress: bool = False, keep_features: bool = False) -> dict[str, Any]:
    """Plain-ranking results (and MSER re-ranked ones, kept apart) of `model` on `data`.

    `full=False` evaluates only the setting used for model selection (SYSU-MM01 all-search single-shot).
    `keep_features` adds {"visible": [V, N, D], "infrared": [1, N, D]} under "features" (figures, verification).
    """
    bs = cfg.eval.batch_size
    vis = extract_features(model, data.visible, rt, bs, views=4 if mser else 1, desc="visible features", progress=progress)
    ir = extract_features(model, data.infrared, rt, bs, views=1, desc="infrared features", progress=progress)
    out: dict[str, Any] = {"protocol": data.protocol, "label": data.label,
                           "plain": run_protocol(data, vis[:1], ir, None, full)}
    if mser:  # minutes on the real datasets: show the trials going by
        out["mser"] = run_protocol(data, vis, ir, "mser", full, progress=progress)
    if keep_features:
        out["features"] = {"visible": vis, "infrared": ir}
    return out


def run_protocol(data: EvalData, vis: torch.Tensor, ir: torch.Tensor, rerank: str | None, full: bool,
                 progress: bool = False) -> dict[str, Any]:
    """{setting or direction: metrics} for features [V, N, D] of the visible and infrared test images."""
    v, i = data.vis, data.ir
    if data.protocol == "sysu":
        settings = SYSU_SETTINGS if full else SYSU_SETTINGS[:1]
        return sysu_protocol(ir, i["pids"], i["cameras"], vis, v["pids"], v["cameras"], list(v["paths"]), data.perm,
                             settings=settings, trials=data.trials, rerank=rerank, progress=progress)
    if data.protocol == "sysu-whole":
        return _sysu_whole_gallery(data, vis, ir, rerank, full)
    if data.protocol == "regdb":
        return evaluate_regdb(vis, v["pids"], ir, i["pids"], rerank=rerank, progress=progress)
    if data.protocol == "llcm":
        return evaluate_llcm(vis, v["pids"], v["cameras"], list(v["paths"]), ir, i["pids"], i["cameras"],
                             list(i["paths"]), trials=data.trials, rerank=rerank, progress=progress)
    params = REGDB_MSER if rerank == "mser" else {}
    return {
        "infrared->visible": evaluate_pair(ir, i["pids"], i["cameras"], vis, v["pids"], v["cameras"], rerank, **params),
        "visible->infrared": evaluate_pair(vis, v["pids"], v["cameras"], ir, i["pids"], i["cameras"], rerank, **params),
    }


def metrics_only(results: dict[str, Any]) -> dict[str, Any]:
    """The results without CMC curves and per-trial lists (what a log line holds)."""
    keep = ("r1", "r5", "r10", "r20", "mAP", "mINP")
    return {part: {name: {k: float(r[k]) for k in keep} for name, r in results[part].items()}
            for part in ("plain", "mser") if part in results}


def _sysu_whole_gallery(data: EvalData, vis: torch.Tensor, ir: torch.Tensor, rerank: str | None,
                        full: bool) -> dict[str, Any]:
    """SYSU-MM01 search modes against every visible test image of the mode's cameras (no trials)."""
    v, i = data.vis, data.ir
    qcams = sysu_query_cams(i["cameras"])  # the same-location rule still applies
    out = {}
    for mode in ("all", "indoor") if full else ("all",):
        keep = np.isin(v["cameras"], GALLERY_CAMS[mode])
        out[f"{mode}-search whole gallery"] = evaluate_pair(ir, i["pids"], qcams, vis[:, torch.as_tensor(keep)],
                                                            v["pids"][keep], v["cameras"][keep], rerank)
    return out


def selection_score(results: dict[str, Any]) -> float:
    """The plain rank-1 that selects the best epoch: SYSU-MM01 all-search single-shot, else the mean of directions."""
    plain = results["plain"]
    if results["protocol"] in ("sysu", "sysu-whole"):  # the first setting: all-search (single-shot)
        return float(next(iter(plain.values()))["r1"])
    return float(np.mean([r["r1"] for r in plain.values()]))


def write_results(results: dict[str, Any], out_dir: str | Path, title: str) -> tuple[Path, Path]:
    """`results.md` and `results.json` in `out_dir` (plain and MSER re-ranked in separate sections)."""
    return write_report(Path(out_dir) / "results", title, results["plain"], results.get("mser"))


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """Results written by `write_results`, back in the shape `evaluate_model` returns."""
    path = Path(run_dir) / "results.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    out = {"protocol": None, "label": raw.get("dataset"), "plain": raw.get("plain", {})}
    if "mser_reranked" in raw:
        out["mser"] = raw["mser_reranked"]
    return out


def write_trials_table(per_trial: dict[int, dict[str, Any]], root: str | Path, title: str) -> dict[str, Any]:
    """RegDB's standard table: mean ± std over the trained splits, both directions, plain and MSER apart."""
    trials: Sequence[dict[str, Any]] = [per_trial[t] for t in sorted(per_trial)]
    plain = regdb_summary([r["plain"] for r in trials])
    mser = regdb_summary([r["mser"] for r in trials]) if all("mser" in r for r in trials) else None
    md, js = write_report(Path(root) / "results", title, plain, mser)
    return {"plain": plain, "mser": mser, "trials": sorted(per_trial), "markdown": md, "json": js}
