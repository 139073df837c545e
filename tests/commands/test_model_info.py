"""`mcja model-info`: builds or loads a model and prints its summary."""

import torch

from helpers.models import expected_param_count
from mcja.cli import main
from mcja.models import MCJA, checkpoint_payload


def test_model_info_builds_a_model(capsys):
    assert main(["model-info", "--depth", "18", "--classes", "7", "--contexts", "3", "--size", "64x32"]) == 0
    out = capsys.readouterr().out
    assert "ResNet-18" in out and "layer2 blocks [0, 1]; layer3 blocks [0, 1] (3 contexts)" in out
    assert f"{expected_param_count(18, 7, 3):,}" in out
    assert "[1, 3, 64, 32] -> [1, 512]" in out and "forward time" in out


def test_model_info_loads_a_checkpoint_or_explains(tmp_path, capsys):
    torch.save(checkpoint_payload(MCJA(5, depth=18, mda_layers=(0, 1, 0, 0))), tmp_path / "m.pt")
    assert main(["model-info", "--checkpoint", str(tmp_path / "m.pt"), "--size", "64x32"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "m.pt") in out and "layer2 blocks [1]" in out and "identities    5" in out
    assert main(["model-info", "--checkpoint", str(tmp_path / "absent.pt")]) == 2
    assert "absent.pt: no such file" in capsys.readouterr().err


def test_model_info_uses_the_checkpoint_image_size(tmp_path, capsys):
    config = {"data": {"image_size": [64, 32]}}
    torch.save(checkpoint_payload(MCJA(3, depth=18), config=config), tmp_path / "m.pt")
    assert main(["model-info", "--checkpoint", str(tmp_path / "m.pt"), "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "[1, 3, 64, 32] -> [1, 512]" in out and "median of 2 runs after a warm-up" in out
    assert main(["model-info", "--checkpoint", str(tmp_path / "m.pt"), "--size", "96x32", "--runs", "1"]) == 0
    assert "[1, 3, 96, 32] -> [1, 512]" in capsys.readouterr().out  # an explicit size still wins


def test_forward_timing_warms_up_then_times_each_run():
    from mcja.inference.model_info import time_forward

    calls = []

    def model(x):
        calls.append(x)
        return x * 2

    out, times = time_forward(model, torch.ones(2), runs=4)
    assert len(calls) == 5 and len(times) == 4 and all(t >= 0 for t in times)
    assert out.tolist() == [2.0, 2.0]
