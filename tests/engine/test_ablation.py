"""Ablation variants on top of a config: each switches exactly its parts (the `ablate` verb:
tests/commands/test_ablate.py)."""

from __future__ import annotations

import pytest

from mcja.engine.ablation import choose_variants, variant_config, variant_files
from mcja.errors import ConfigError


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
