"""Results tables of a dataset's whole protocol, as markdown and JSON.

Plain and re-ranked figures never share a table: re-ranked ones sit in their own section, and every such
heading and row says "(MSER re-ranked)", because most VI-ReID papers compare without re-ranking.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mcja.utils.io import atomic_write_json, atomic_write_text

RERANK_LABEL = "(MSER re-ranked)"
COLUMNS = (("r1", "R1"), ("r5", "R5"), ("r10", "R10"), ("r20", "R20"), ("mAP", "mAP"), ("mINP", "mINP"))

Results = Mapping[str, Mapping[str, Any]]  # row name (setting or direction) -> metrics dict


def _cell(result: Mapping[str, Any], key: str) -> str:
    """One table cell: the value, with '± std' when the result carries standard deviations."""
    std = result.get("std")
    return f"{result[key]:.2f} ± {std[key]:.2f}" if std else f"{result[key]:.2f}"


def _table(rows: Results, suffix: str, per_trial: bool) -> list[str]:
    """Markdown lines of one table; with per_trial, a row for each trial follows its summary row."""
    lines = ["| setting | " + " | ".join(h for _, h in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, result in rows.items():
        label = f"{name} {suffix}".strip()
        mean_label = f"{label} (mean over {len(result['trials'])} trials)" if result.get("trials") else label
        lines.append(f"| {mean_label} | " + " | ".join(_cell(result, k) for k, _ in COLUMNS) + " |")
        for i, trial in enumerate(result.get("trials", []) if per_trial else []):
            lines.append(f"| {label}, trial {i + 1} | " + " | ".join(f"{trial[k]:.2f}" for k, _ in COLUMNS) + " |")
    return lines


def results_table(dataset: str, plain: Results | None = None, reranked: Results | None = None, per_trial: bool | None = None) -> str:
    """Markdown report: a plain section and a separate "(MSER re-ranked)" section, for what is given.

    Per-trial rows are shown by default when results carry standard deviations (RegDB's splits).
    """
    if plain is None and reranked is None:
        raise ValueError("nothing to report: give plain and/or re-ranked results")
    out = [f"# {dataset} results", ""]
    for title, rows, suffix in ((f"{dataset}", plain, ""), (f"{dataset} {RERANK_LABEL}", reranked, RERANK_LABEL)):
        if rows is None:
            continue
        show = per_trial if per_trial is not None else any("std" in r for r in rows.values())
        out += [f"## {title}", ""] + _table(rows, suffix, show) + [""]
    return "\n".join(out)


def _jsonable(result: Mapping[str, Any]) -> dict[str, Any]:
    """A results dict with arrays as lists (the CMC curve) and per-trial dicts converted too."""
    out = {}
    for k, v in result.items():
        if k == "trials":
            out[k] = [_jsonable(t) for t in v]
        else:
            out[k] = v.tolist() if isinstance(v, np.ndarray) else v
    return out


def results_json(dataset: str, plain: Results | None = None, reranked: Results | None = None) -> dict[str, Any]:
    """JSON-ready report: {"dataset", "plain": {...}, "mser_reranked": {...}} (absent parts left out)."""
    out: dict[str, Any] = {"dataset": dataset, "rerank_label": RERANK_LABEL}
    if plain is not None:
        out["plain"] = {name: _jsonable(r) for name, r in plain.items()}
    if reranked is not None:
        out["mser_reranked"] = {name: _jsonable(r) for name, r in reranked.items()}
    return out


def write_report(
    stem: str | os.PathLike, dataset: str, plain: Results | None = None, reranked: Results | None = None
) -> tuple[Path, Path]:
    """Write `<stem>.md` and `<stem>.json` atomically; returns both paths."""
    stem = Path(stem)
    md = atomic_write_text(stem.with_suffix(".md"), results_table(dataset, plain, reranked))
    js = atomic_write_json(stem.with_suffix(".json"), results_json(dataset, plain, reranked))
    return md, js
