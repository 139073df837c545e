"""Comparison tables of several runs (e.g. ablation variants) with each metric's change against a baseline.

Plain and MSER re-ranked figures stay in separate sections, one table per protocol setting.
"""

from __future__ import annotations

from typing import Any, Mapping

from mcja.evaluation.report import RERANK_LABEL

KEYS = (("r1", "R1"), ("mAP", "mAP"), ("mINP", "mINP"))
PARTS = (("plain", "", "plain ranking"), ("mser", f" {RERANK_LABEL}", "MSER re-ranked"))


def _delta(value: float, base: float | None) -> str:
    return "" if base is None else f"{value - base:+.2f}"


def setting_table(runs: Mapping[str, Mapping[str, Any]], part: str, setting: str, baseline: str | None) -> list[str]:
    """Markdown lines: one row per run holding `setting`, each metric followed by its change against `baseline`."""
    head = "| variant | " + " | ".join(f"{h} | Δ{h}" for _, h in KEYS) + " |"
    lines = [head, "|---" + "|---:" * (2 * len(KEYS)) + "|"]
    base = runs.get(baseline, {}).get(part, {}).get(setting) if baseline else None
    for name, results in runs.items():
        r = results.get(part, {}).get(setting)
        if r is None:
            continue
        cells = [f"{r[k]:.2f} | {_delta(r[k], base[k] if base else None)}" for k, _ in KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def comparison_report(runs: Mapping[str, Mapping[str, Any]], title: str, baseline: str | None = "baseline") -> str:
    """The markdown report: a section per part (plain, MSER re-ranked) and a table per setting in it."""
    baseline = baseline if baseline in runs else None
    note = f"Δ: change against `{baseline}` in points." if baseline else "No baseline run: changes are left blank."
    out = [f"# {title}", "", "Each run's selected model on the whole test protocol (SYSU-MM01 and LLCM: mean over "
           f"the gallery trials). {note}", ""]
    for part, suffix, heading in PARTS:
        settings = [s for r in runs.values() for s in r.get(part, {})]
        if not settings:
            continue
        out += [f"## {heading}", ""]
        for setting in dict.fromkeys(settings):  # first-seen order, no repeats
            out += [f"### {setting}{suffix}", ""] + setting_table(runs, part, setting, baseline) + [""]
    return "\n".join(out)
