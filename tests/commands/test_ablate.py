"""`mcja ablate`: one run folder per variant, a comparison table; a second call resumes (the variants themselves:
tests/engine/test_ablation.py)."""

from __future__ import annotations

import json

from helpers.training import TINY_TRAIN
from mcja.cli import main

TINY = [*TINY_TRAIN, "eval.mser=true"]


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


def test_an_interrupted_ablation_says_to_rerun_it_and_resumes_where_it_stopped(sysu_root, tmp_path, capsys, monkeypatch):
    from mcja.engine.trainer import Trainer

    out = tmp_path / "abl"
    args = ["ablate", "--config", "demo.yaml", "--variants", "baseline", "--out", str(out), "--quiet",
            f"data.root={sysu_root}", f"data.cache_dir={tmp_path / 'c'}", *TINY_TRAIN, "eval.mser=false"]
    original = Trainer._train_step

    def stop_after_the_first_step(self, batch, epoch, step):
        result = original(self, batch, epoch, step)
        self.request_stop()  # as Ctrl-C does: the step finishes, the state is saved
        return result

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_train_step", stop_after_the_first_step)
        assert main(args) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stopped at epoch 1, step 1;" in err and str(out / "baseline" / "last.pt") in err, err
    assert "Resume with: the same `mcja ablate` command" in err and "mcja train --resume" not in err, err
    assert main(args) == 0
    assert f"resumed {out / 'baseline'} at epoch 1, step 1" in capsys.readouterr().out  # where the stop said
    assert (out / "ablation.md").exists()
