"""Console summaries a person reads at a glance: run outcome and results tables."""

from __future__ import annotations

from typing import Any, Mapping

COLUMNS = (("r1", "R1"), ("r10", "R10"), ("r20", "R20"), ("mAP", "mAP"), ("mINP", "mINP"))


def format_duration(seconds: float) -> str:
    """'1h 02m', '3m 05s', '12.3s'."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def results_lines(rows: Mapping[str, Mapping[str, Any]], heading: str) -> list[str]:
    """A fixed-width table of metrics (percent), one row per setting or direction; '± std' when present."""
    width = max([len(heading)] + [len(name) for name in rows]) + 2
    lines = [heading.ljust(width) + "".join(h.rjust(15 if _has_std(rows) else 8) for _, h in COLUMNS)]
    for name, r in rows.items():
        std = r.get("std")
        cells = [f"{r[k]:.2f} ± {std[k]:.2f}".rjust(15) if std else f"{r[k]:.2f}".rjust(8) for k, _ in COLUMNS]
        lines.append(name.ljust(width) + "".join(cells))
    return lines


def _has_std(rows: Mapping[str, Mapping[str, Any]]) -> bool:
    return any(r.get("std") for r in rows.values())


def print_results(results: Mapping[str, Any]) -> None:
    """Plain figures, then MSER re-ranked ones under their own heading."""
    label = results.get("label") or "results"
    print("\n".join(results_lines(results["plain"], label)))
    if results.get("mser"):
        print()
        print("\n".join(results_lines(results["mser"], f"{label} (MSER re-ranked)")))


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
        from mcja.engine.checkpoint import selected_checkpoint  # lazily: this module stays torch-free

        print(f"results      {summary.run_dir / 'results.md'}  (selected model: {selected_checkpoint(summary.run_dir).name})")
        print()
        print_results(summary.results)


def print_trials_table(table: Mapping[str, Any]) -> None:
    """RegDB's mean ± std over splits."""
    print()
    print(f"== {len(table['trials'])} trials: {', '.join(map(str, table['trials']))} ==")
    print("\n".join(results_lines(table["plain"], "RegDB (mean ± std over trials)")))
    if table.get("mser"):
        print()
        print("\n".join(results_lines(table["mser"], "RegDB (MSER re-ranked)")))
    print(f"\ntables written to {table['markdown']} and {table['json']}")
