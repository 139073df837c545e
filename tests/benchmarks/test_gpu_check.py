"""benchmarks/gpu_check.py: the CPU dry run passes end to end, and a failing check fails the run by name."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def gpu_check(monkeypatch):
    """The gpu_check module, imported from benchmarks/."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("gpu_check")


@pytest.mark.slow
def test_tiny_cpu_dry_run_runs_every_check_and_passes(gpu_check, tmp_path):
    out = tmp_path / "check.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(BENCH / "gpu_check.py"), "--device", "cpu", "--tiny", "--json", str(out)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [r["check"] for r in report["checks"]] == list(gpu_check.CHECKS)
    assert report["passed"] and all(r["ok"] for r in report["checks"])
    figures = {r["check"]: r["figures"] for r in report["checks"]}
    assert figures["ddp"]["backend"] == "gloo"
    assert figures["train"]["images_per_s"] > 0 and figures["train"]["peak_memory_gib"] > 0
    assert figures["augment"]["max_abs_diff"] == 0  # the same generator state on the same device: identical
    assert all(g["status"] == "not judged (dry run)" for g in report["goals"])
    assert "| check | result |" in proc.stdout and "| goal | target |" in proc.stdout


def test_a_failing_check_fails_the_run_and_is_named(gpu_check, monkeypatch, capsys):
    def broken(device, sizes):
        raise gpu_check.CheckFailed("augmented batch differs from the CPU's: max 0.5")

    monkeypatch.setitem(gpu_check.CHECKS, "augment", broken)
    assert gpu_check.main(["--device", "cpu", "--tiny", "--only", "augment", "softrank_cmr"]) == 1
    captured = capsys.readouterr()
    assert "gpu_check FAILED: augment" in captured.err
    assert "| augment | **FAILED** |" in captured.out and "| softrank_cmr | ok |" in captured.out


def test_goals_are_judged_against_their_targets_on_a_gpu_run(gpu_check):
    rows = {"train": {"figures": {"images_per_s": 3100.0, "data_path_ratio": 0.7}},
            "protocol_time": {"figures": {"seconds": 0.19}}}
    status = {g["goal"]: g["status"] for g in gpu_check.goal_rows(rows, judged=True)}
    assert list(status.values()) == ["met", "NOT met", "not measured", "met", "not measured"]
