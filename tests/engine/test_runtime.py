"""Numerics per purpose: CPU training stays float32 unless asked, test-time features use bf16 on bf16 CPUs."""

import os

import pytest
import torch

import mcja.engine.runtime as runtime
from mcja.engine.runtime import Runtime, inference_runtime, resolve_amp
from mcja.errors import ConfigError

CPU = torch.device("cpu")


@pytest.mark.parametrize("native", [True, False])
def test_auto_on_a_cpu_is_float32_for_training_and_bf16_for_features_only_with_native_bf16(monkeypatch, native):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
    assert resolve_amp("auto", CPU) is None  # training: bf16 on a CPU only when asked (train.amp=bf16)
    assert resolve_amp("auto", CPU, inference=True) == (torch.bfloat16 if native else None)
    assert resolve_amp("off", CPU, inference=True) is None  # the switch that forces float32
    assert resolve_amp("bf16", CPU) == torch.bfloat16  # asked for: also where it is emulated


def test_inference_runtime_follows_the_setting_and_describes_itself(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    rt = Runtime(device=CPU)
    fast, exact = inference_runtime(rt, "auto"), inference_runtime(rt, "off")
    assert (fast.amp_dtype, fast.channels_last) == (torch.bfloat16, True)
    assert (exact.amp_dtype, exact.channels_last) == (None, False)
    assert rt.amp_dtype is None  # a copy: the training runtime is left as it was
    assert fast.describe() == "cpu, bf16, channels-last" and exact.describe() == "cpu, float32"


@pytest.mark.parametrize("amp, message", [("fp32", "amp: expected one of auto, bf16, fp16, off, got 'fp32'"),
                                          ("fp16", "needs a CUDA device")])
def test_bad_amp_settings_are_one_clear_line(amp, message):
    with pytest.raises(ConfigError, match=message):
        resolve_amp(amp, CPU)


def test_the_probe_matches_the_cpu_flags():
    if not os.path.exists("/proc/cpuinfo"):
        pytest.skip("no /proc/cpuinfo")
    flags = open("/proc/cpuinfo").read().split()
    assert runtime.cpu_has_native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)
