"""The paper's ablation study: train each variant (one resumable run folder each), then one comparison table.

A variant is a YAML file under `configs/ablations/<dataset>/` whose settings go on top of the given config
(its `base:` key names the shipped config it was written for). Variants shared by every dataset: the
SYSU-MM01 set serves LLCM and folder datasets too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import yaml

from mcja.config import CONFIG_DIR, Config, load_config
from mcja.errors import ConfigError
from mcja.evaluation.comparison import comparison_report
from mcja.utils.io import atomic_write_json, atomic_write_text

ABLATION_DIR = CONFIG_DIR / "ablations"
ORDER = ("baseline", "wg", "cc", "sj", "vimc", "mda", "cmr", "vimc-mda", "full")


def variant_files(dataset: str) -> dict[str, Path]:
    """Variant name -> YAML file for a dataset, in the study's order."""
    folder = ABLATION_DIR / ("regdb" if dataset == "regdb" else "sysu")
    found = {p.stem: p for p in folder.glob("*.yaml")}
    return {name: found[name] for name in sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))}


def choose_variants(text: str | Sequence[str], dataset: str) -> dict[str, Path]:
    """'all', or comma/space separated names; ConfigError naming the valid ones otherwise."""
    files = variant_files(dataset)
    names = [text] if isinstance(text, str) else list(text)
    names = [n for item in names for n in item.replace(",", " ").split()]
    if names == ["all"]:
        return files
    unknown = [n for n in names if n not in files]
    if unknown or not names:
        raise ConfigError(f"--variants {' '.join(names) or '(none)'}: unknown {', '.join(unknown) or 'empty'}; "
                          f"expected all or some of {', '.join(files)}")
    return {n: files[n] for n in names}


def variant_overrides(path: Path) -> list[str]:
    """The variant file's settings as dotted `key=value` overrides (its `base:` key is informative)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw.pop("base", None)
    out = []
    for section, values in raw.items():
        for key, value in (values.items() if isinstance(values, dict) else [(None, values)]):
            dotted = f"{section}.{key}" if key is not None else section
            out.append(f"{dotted}={json.dumps(value)}")  # JSON is YAML: the override parser reads it back
    return out


def variant_config(config: str | Path, path: Path, overrides: Sequence[str], name: str) -> Config:
    """The base config, the variant's settings, the user's overrides (last word), the run's name."""
    base = load_config(config, list(overrides))
    return load_config(config, [*variant_overrides(path), *overrides, f"name={base.name}-{name}"])


def run_variant(cfg: Config, run_dir: Path, overrides: Sequence[str], progress: bool) -> dict[str, Any]:
    """A finished variant's results, resuming or starting its run as needed."""
    from mcja.engine.run import resume_config, train
    from mcja.engine.trainer import TrainingInterrupted
    from mcja.evaluation.report import read_results

    if (run_dir / "results.json").exists():
        return read_results(run_dir)
    try:
        if (run_dir / "last.pt").exists():  # interrupted earlier: continue where it stopped
            return train(resume_config(run_dir, list(overrides)), resume=run_dir, progress=progress).results
        return train(cfg, run_dir=run_dir, progress=progress).results
    except TrainingInterrupted as stop:  # `mcja train --resume` would finish this variant but not the study
        raise stop.resumed_by("the same `mcja ablate` command (finished variants are kept, this one continues "
                              "from its last.pt)") from None


def run_ablation(config: str | Path, variants: str | Sequence[str] = "all", overrides: Sequence[str] = (),
                 out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Train the chosen variants (skipping finished ones), write ablation.md / ablation.json; returns the table."""
    base = load_config(config, list(overrides))
    chosen = choose_variants(variants, base.data.dataset)
    root = Path(out) if out else Path(base.output_dir) / f"{base.name}-ablation"
    runs: dict[str, Any] = {}
    for name, path in chosen.items():
        cfg = variant_config(config, path, overrides, name)
        runs[name] = run_variant(cfg, root / name, overrides, progress)
    title = f"Ablation of {base.name} ({len(runs)} variants; {base.data.dataset}, root {base.data.root})"
    md = atomic_write_text(root / "ablation.md", comparison_report(runs, title))
    js = atomic_write_json(root / "ablation.json", {"title": title, "variants": list(runs), "results": runs})
    return {"runs": runs, "markdown": md, "json": js, "root": root}
