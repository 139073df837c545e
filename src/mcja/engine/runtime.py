"""Where and how training runs: device, mixed precision, distributed process group, seeds."""

from __future__ import annotations

import os
import random
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, ContextManager

import numpy as np
import torch
import torch.distributed as dist

from mcja.errors import ConfigError


@dataclass
class Runtime:
    """The process's place in a (possibly distributed) run and its numeric settings."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    amp_dtype: torch.dtype | None = None  # None = full float32
    channels_last: bool = False
    process_group: bool = False  # joined one (torchrun, even with a single process: DDP runs as it would on many)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.process_group

    def describe(self) -> str:
        """Device and numerics in words, e.g. 'cuda:0, bf16, channels-last, DDP 1 process (nccl)'."""
        parts = [str(self.device), precision_name(self.amp_dtype)] + (["channels-last"] if self.channels_last else [])
        if self.distributed and dist.is_initialized():
            parts.append(f"DDP {self.world_size} process{'es' if self.world_size > 1 else ''} ({dist.get_backend()})")
        return ", ".join(parts)

    def autocast(self) -> ContextManager[Any]:
        """Autocast context for forward passes (a no-op in float32)."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """Move a batch to the device in the memory format the model runs in."""
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def resolve_device(name: str = "auto", local_rank: int = 0, setting: str = "train.device") -> torch.device:
    """`auto` -> the local CUDA device when there is one, else CPU; errors name `setting`."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"'{setting}': unknown device {name!r} (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"'{setting}' is {name!r} but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


AMP_MODES = ("auto", "bf16", "fp16", "off")


def precision_name(dtype: torch.dtype | None) -> str:
    """How a Runtime's numerics read in reports: float32, bf16 or fp16."""
    return {None: "float32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bf16 arithmetic instructions (AVX512-BF16 or AMX), where bf16 autocast beats float32.

    Without them bf16 is emulated and much slower than float32, so `auto` never picks it there.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's run-time CPUID probes
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_amp(amp: str, device: torch.device, inference: bool = False) -> torch.dtype | None:
    """Mixed-precision dtype: `auto` is bf16 (or fp16) on CUDA; on a CPU, bf16 for test-time features
    (`inference`) when the CPU has native bf16 instructions, else full float32 (always for CPU training)."""
    if amp not in AMP_MODES:
        raise ConfigError(f"amp: expected one of {', '.join(AMP_MODES)}, got {amp!r}")
    if amp == "off":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return torch.bfloat16 if inference and cpu_has_native_bf16() else None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("'train.amp: fp16' needs a CUDA device (use bf16 or off on CPU)")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def inference_runtime(rt: Runtime, amp: str = "auto") -> Runtime:
    """`rt` with the numerics for test-time features under the `amp` setting (see resolve_amp)."""
    dtype = resolve_amp(amp, rt.device, inference=True)
    return replace(rt, amp_dtype=dtype, channels_last=_channels_last(True, rt.device, dtype))


def _channels_last(wanted: bool, device: torch.device, dtype: torch.dtype | None) -> bool:
    """Channels-last where it is faster: on CUDA, and on a CPU in bf16 (oneDNN's bf16 kernels prefer it)."""
    return wanted and (device.type == "cuda" or dtype == torch.bfloat16)


def setup_runtime(device: str = "auto", amp: str = "auto", channels_last: bool = True,
                  inference: bool = False) -> Runtime:
    """Join the process group when launched by torchrun (NCCL on GPU, gloo on CPU) and pick the device and
    numerics (`inference`: for test-time features only, see resolve_amp)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    # torchrun marks its processes: join the group at world size 1 too, so a one-GPU launch runs DDP and NCCL
    launched = world_size > 1 or "TORCHELASTIC_RUN_ID" in os.environ
    if launched and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        # Rank 0 evaluates (MSER can take a while) while the others wait at a barrier: allow for it.
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", timeout=timedelta(hours=2))
    dtype = resolve_amp(amp, dev, inference)
    return Runtime(device=dev, rank=rank, world_size=world_size, local_rank=local_rank, amp_dtype=dtype,
                   channels_last=_channels_last(channels_last, dev, dtype), process_group=launched)


def teardown_runtime(rt: Runtime) -> None:
    """Leave the process group, if any."""
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def rng_state() -> dict[str, Any]:
    """The global RNG states (saved in checkpoints so a resumed run continues identically)."""
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` saved."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
