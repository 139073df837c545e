"""Every report a person reads: results tables (markdown, JSON, console), results files of a run or a test, RegDB's
table over splits, the end-of-training and demo summaries.

Plain and re-ranked figures never share a table: re-ranked ones sit in their own section, and every such
heading and row says "(MSER re-ranked)", because most VI-ReID papers compare without re-ranking.
Results are {"plain": {row: metrics}, "mser": {row: metrics}} with rows named by setting or direction.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mcja.evaluation.evaluate import METRIC_KEYS
from mcja.evaluation.regdb import regdb_summary
from mcja.evaluation.sysu import SYSU_SETTINGS, setting_name
from mcja.utils.io import atomic_write_json, atomic_write_text

RERANK_LABEL = "(MSER re-ranked)"
COLUMNS = tuple((k, k.upper() if k.startswith("r") else k) for k in METRIC_KEYS)  # (key, heading): r1 -> R1
PARTS = ("plain", "mser")

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


def results_table(dataset: str, plain: Results | None = None, reranked: Results | None = None,
                  per_trial: bool | None = None, rerank_note: str = "") -> str:
    """Markdown report: a plain section and a separate "(MSER re-ranked)" section, for what is given.

    Per-trial rows are shown by default when results carry standard deviations (RegDB's splits); `rerank_note`
    (the MSER parameters) is said under the re-ranked heading.
    """
    if plain is None and reranked is None:
        raise ValueError("nothing to report: give plain and/or re-ranked results")
    out = [f"# {dataset} results", ""]
    for title, rows, suffix in ((f"{dataset}", plain, ""), (f"{dataset} {RERANK_LABEL}", reranked, RERANK_LABEL)):
        if rows is None:
            continue
        show = per_trial if per_trial is not None else any("std" in r for r in rows.values())
        note = [f"MSER parameters: {rerank_note}.", ""] if suffix and rerank_note else []
        out += [f"## {title}", ""] + note + _table(rows, suffix, show) + [""]
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


def results_json(dataset: str, plain: Results | None = None, reranked: Results | None = None,
                 rerank_note: str = "") -> dict[str, Any]:
    """JSON-ready report: {"dataset", "plain": {...}, "mser_reranked": {...}} (absent parts left out)."""
    out: dict[str, Any] = {"dataset": dataset, "rerank_label": RERANK_LABEL}
    if reranked is not None and rerank_note:
        out["mser_params"] = rerank_note
    if plain is not None:
        out["plain"] = {name: _jsonable(r) for name, r in plain.items()}
    if reranked is not None:
        out["mser_reranked"] = {name: _jsonable(r) for name, r in reranked.items()}
    return out


def write_report(
    stem: str | os.PathLike, dataset: str, plain: Results | None = None, reranked: Results | None = None,
    rerank_note: str = "",
) -> tuple[Path, Path]:
    """Write `<stem>.md` and `<stem>.json` atomically; returns both paths."""
    stem = Path(stem)
    md = atomic_write_text(stem.with_suffix(".md"), results_table(dataset, plain, reranked, rerank_note=rerank_note))
    js = atomic_write_json(stem.with_suffix(".json"), results_json(dataset, plain, reranked, rerank_note))
    return md, js


# ------------------------------------------------------------------ results files of a run or a test
def write_results(results: Mapping[str, Any], out_dir: str | Path, title: str) -> tuple[Path, Path]:
    """`results.md` and `results.json` in `out_dir` (plain and MSER re-ranked in separate sections)."""
    return write_report(Path(out_dir) / "results", title, results["plain"], results.get("mser"),
                        results.get("mser_params", ""))


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """Results written by `write_results`, back in the shape they were given: {"label", "plain", "mser"?}."""
    raw = json.loads((Path(run_dir) / "results.json").read_text(encoding="utf-8"))
    out = {"protocol": None, "label": raw.get("dataset"), "plain": raw.get("plain", {})}
    if "mser_reranked" in raw:
        out["mser"] = raw["mser_reranked"]
    return out


def metrics_only(results: Mapping[str, Any]) -> dict[str, Any]:
    """The results without CMC curves and per-trial lists (what a log line holds)."""
    return {part: {name: {k: float(r[k]) for k in METRIC_KEYS} for name, r in results[part].items()}
            for part in PARTS if part in results}


def write_trials_table(per_trial: Mapping[int, Mapping[str, Any]], root: str | Path, title: str) -> dict[str, Any]:
    """RegDB's standard table: mean ± std over the trained splits, both directions, plain and MSER apart."""
    trials: Sequence[Mapping[str, Any]] = [per_trial[t] for t in sorted(per_trial)]
    plain = regdb_summary([r["plain"] for r in trials])
    mser = regdb_summary([r["mser"] for r in trials]) if all("mser" in r for r in trials) else None
    md, js = write_report(Path(root) / "results", title, plain, mser)
    return {"plain": plain, "mser": mser, "trials": sorted(per_trial), "markdown": md, "json": js}


# ------------------------------------------------------------------ the console
def format_duration(seconds: float) -> str:
    """'1h 02m', '3m 05s', '12.3s'."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def results_lines(rows: Results, heading: str) -> list[str]:
    """A fixed-width table of metrics (percent), one row per setting or direction; '± std' when present."""
    width = max([len(heading)] + [len(name) for name in rows]) + 2
    cell = 15 if any(r.get("std") for r in rows.values()) else 8
    lines = [heading.ljust(width) + "".join(h.rjust(cell) for _, h in COLUMNS)]
    for name, r in rows.items():
        lines.append(name.ljust(width) + "".join(_cell(r, k).rjust(cell) for k, _ in COLUMNS))
    return lines


def print_results(results: Mapping[str, Any], label: str | None = None) -> None:
    """Plain figures, then MSER re-ranked ones under their own heading."""
    label = label or results.get("label") or "results"
    print("\n".join(results_lines(results["plain"], label)))
    if results.get("mser"):
        print()
        print("\n".join(results_lines(results["mser"], f"{label} {RERANK_LABEL}")))


def print_verification(ver: Mapping[str, Any]) -> None:
    """TPR at each target FPR and the equal error rate, one line."""
    points = ", ".join(f"{tpr:.2f}% at FPR {fpr}" for fpr, tpr in ver["tpr_at_fpr"].items())
    print(f"\nverification (cross-modality pairs): TPR {points}; EER {ver['eer']:.2f}% "
          f"(cosine threshold {ver['eer_threshold']:.3f})")


def print_run_summary(summary: Any) -> None:
    """The end-of-training block: where the run is, how long it took, the selected epoch and its results."""
    print()
    print("== training finished ==")
    print(f"run folder   {summary.run_dir}")
    best = f"epoch {summary.best_epoch}: rank-1 {summary.best_score:.2f}%" if summary.best_epoch > 0 else "none evaluated"
    print(f"epochs       {summary.epochs} (best {best})")
    print(f"time         {format_duration(summary.seconds)}")
    if summary.results:
        print(f"results      {summary.run_dir / 'results.md'}  (selected model: "
              f"{summary.selected.name})")
        print()
        print_results(summary.results)


def print_trials_table(table: Mapping[str, Any]) -> None:
    """RegDB's mean ± std over splits."""
    print()
    print(f"== {len(table['trials'])} trials: {', '.join(map(str, table['trials']))} ==")
    print_results(table, "RegDB (mean ± std over trials)")
    print(f"\ntables written to {table['markdown']} and {table['json']}")


# ------------------------------------------------------------------ `mcja demo`
DEMO_HEADLINE = setting_name(*SYSU_SETTINGS[0])  # the SYSU-MM01 setting the demo's before/after compares: all-search single-shot


def demo_markdown(report: Mapping[str, Any], best_epoch: int, pictures: Sequence[Path], curves: Path | None) -> str:
    """The demo's report.md: before/after table, the trained model's settings, curves and ranked lists."""
    b, a = report["before"], report["after"]
    lines = [
        "# mcja demo report", "",
        f"MCJA (VIMC augmentation, MDA blocks, CMR + identity loss) trained from random weights on a synthetic "
        f"SYSU-MM01-layout dataset; {report['epochs']} epochs in {format_duration(report['seconds'])} on {report['machine']}.",
        "", f"## Before and after training (SYSU-MM01 protocol, {DEMO_HEADLINE}, mean of "
            f"{report['config']['eval']['trials']} trials)", "",
        "| | rank-1 | mAP | mINP |", "|---|---|---|---|",
        f"| untrained | {b['r1']:.2f} | {b['mAP']:.2f} | {b['mINP']:.2f} |",
        f"| trained (epoch {best_epoch if best_epoch > 0 else report['epochs']}) | "
        f"{a['r1']:.2f} | {a['mAP']:.2f} | {a['mINP']:.2f} |",
    ]
    if report["before_mser"] and report["after_mser"]:
        bm, am = report["before_mser"], report["after_mser"]
        lines += [f"| untrained (MSER re-ranked) | {bm['r1']:.2f} | {bm['mAP']:.2f} | {bm['mINP']:.2f} |",
                  f"| trained (MSER re-ranked) | {am['r1']:.2f} | {am['mAP']:.2f} | {am['mINP']:.2f} |"]
    lines += ["", f"Rank-1 after / before: {a['r1'] / max(b['r1'], 1e-9):.1f}x.", ""]
    after = report["results_after"]
    table = results_table("Trained model, all four settings", after["plain"], after.get("mser"))
    lines += table.split("\n", 2)[2:] + [""]  # drop the table's own top-level title
    lines += ["## Training curves", "", "![curves](curves.png)" if curves else
              "(install matplotlib for curves: `pip install 'mcja[plot]'`)", "",
              "The CMR value stays near (G - 1) / 2 by construction: at strength 0.5 each ranking row is one "
              "soft-rank block, so the loss acts through its gradient, a pull on matching and a push on "
              "non-matching cross-modality pairs (MCJA-SPEC, Losses).", ""]
    lines += ["## Ranked lists (infrared queries, visible gallery of trial 1; green = same person)", ""]
    lines += [f"![{p.stem}]({p.name})" for p in pictures]
    return "\n".join(lines) + "\n"


def print_demo_summary(report: Mapping[str, Any], report_dir: Path) -> None:
    """Before/after at a glance, then where the report is."""
    b, a = report["before"], report["after"]
    print()
    print("== mcja demo ==")
    rows = {"untrained": b, "trained": a}
    if report["before_mser"] and report["after_mser"]:
        rows.update({"untrained (MSER re-ranked)": report["before_mser"], "trained (MSER re-ranked)": report["after_mser"]})
    print("\n".join(results_lines(rows, f"SYSU protocol, {DEMO_HEADLINE}")))
    print(f"\nrank-1 went from {b['r1']:.1f}% to {a['r1']:.1f}% ({a['r1'] / max(b['r1'], 1e-9):.1f}x) "
          f"in {format_duration(report['seconds'])}")
    print(f"report: {report_dir / 'report.md'} (tables, curves.png, ranked lists, metrics.json)")
