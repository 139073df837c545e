"""`mcja demo` end to end at a tiny scale: the report folder a person reads."""

from __future__ import annotations

import json

import pytest

from mcja import api


@pytest.mark.slow
def test_demo_writes_the_report_folder(tmp_path, capsys):
    report = api.demo(tmp_path / "demo", ["train.device=cpu", "data.p_size=8", "eval.trials=3"], progress=False,
                      ids=24, images_per_camera=2, size=(64, 32), epochs=2)
    out = tmp_path / "demo" / "report"
    md = (out / "report.md").read_text()
    assert "Before and after training" in md and "MSER re-ranked" in md
    assert (out / "curves.png").stat().st_size > 1000
    pictures = sorted(out.glob("query_*.png"))
    assert len(pictures) == 6 and all(f"({p.name})" in md for p in pictures)
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("before", "after", "before_mser", "after_mser"):
        assert 0 <= saved[key]["r1"] <= 100 and 0 <= saved[key]["mAP"] <= 100
    assert saved["epochs"] == 2 and report["after"]["r1"] == saved["after"]["r1"]
    printed = capsys.readouterr().out
    assert "rank-1 went from" in printed and str(out / "report.md") in printed
    # a second run in the same folder starts afresh instead of refusing the existing run
    api.demo(tmp_path / "demo", ["train.device=cpu", "data.p_size=8", "eval.trials=3", "eval.mser=false",
                                 "eval.mser_at_start=false"], progress=False, ids=24, images_per_camera=2,
             size=(64, 32), epochs=1)
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
