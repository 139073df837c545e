"""`mcja ablate`: variants on top of a config, one run folder each, a comparison table; a second call resumes."""

from __future__ import annotations

import json

import pytest

from mcja.cli import main
from mcja.engine.ablation import choose_variants, variant_config, variant_files
from mcja.errors import ConfigError

TINY = ["data.image_size=[64,32]", "data.p_size=4", "data.k_size=4", "augment.padding=2", "train.device=cpu",
        "optim.epochs=1", "train.steps_per_epoch=2", "eval.start=1", "eval.every=0", "eval.trials=2",
        "eval.mser=true"]


def test_variants_switch_exactly_their_parts():
    files = variant_files("regdb")
    assert list(files)[0] == "baseline" and list(files)[-1] == "full" and len(files) == 9
    base = variant_config("regdb.yaml", files["baseline"], [], "baseline")
    assert (base.augment.vimc_wg, base.augment.vimc_cc, base.augment.vimc_sj) == (False, False, False)
    assert base.model.mda_layers == [0, 0, 0, 0] and base.loss.cmr is False and base.model.mda_contexts == 12
    sj = variant_config("regdb.yaml", files["sj"], [], "sj")
    assert (sj.augment.vimc_wg, sj.augment.vimc_cc, sj.augment.vimc_sj) == (False, False, True)
    full = variant_config("regdb.yaml", files["full"], ["optim.epochs=3"], "full")
    assert full.model.mda_layers == [0, 2, 3, 0] and full.loss.cmr and full.optim.epochs == 3 and full.name == "regdb-full"
    with pytest.raises(ConfigError, match="expected all or some of baseline"):
        choose_variants("baseline,nope", "sysu")


def test_ablate_writes_the_table_and_resumes(sysu_root, tmp_path, capsys):
    out = tmp_path / "abl"
    args = ["ablate", "--config", "demo.yaml", "--variants", "baseline,full", "--out", str(out), "--quiet",
            f"data.root={sysu_root}", f"data.cache_dir={tmp_path / 'c'}", *TINY]
    assert main(args) == 0
    table = (out / "ablation.md").read_text()
    assert "| baseline | " in table and "| full | " in table and "ΔR1" in table
    plain, mser = table.split("(MSER re-ranked)", 1)
    assert "### all-search single-shot" in plain and "all-search single-shot (MSER re-ranked)" in table
    saved = json.loads((out / "ablation.json").read_text())
    b, f = (saved["results"][v]["plain"]["all-search single-shot"] for v in ("baseline", "full"))
    row = next(line for line in plain.splitlines() if line.startswith("| full | "))
    assert f"{f['r1'] - b['r1']:+.2f}" in row  # the delta against the baseline
    assert next(line for line in plain.splitlines() if line.startswith("| baseline | ")).count("+0.00") == 3
    stamp = (out / "full" / "last.pt").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0  # finished variants are read back, not trained again
    assert (out / "full" / "last.pt").stat().st_mtime_ns == stamp
    assert "| full | " in capsys.readouterr().out
