"""Training-step time of the ResNet-50 MCJA network (forward + backward + Adam step), per device and precision.

    python benchmarks/bench_train_step.py [--steps N] [--batch 8] [--size 384x192] [--device cpu|cuda|all] [--bf16]

The loss is a stand-in (cross-entropy on the logits + mean of the features) so the figure isolates the network;
the real CMR loss is benchmarked on its own. Prints a markdown table and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from mcja.engine.runtime import cpu_has_native_bf16
from mcja.models import MCJA

# (name, channels_last, autocast dtype or None)
VARIANTS = [
    ("float32", False, None),
    ("float32 + channels_last", True, None),
    ("bf16 autocast", False, torch.bfloat16),
    ("bf16 autocast + channels_last", True, torch.bfloat16),
]


def cpuinfo_field(name: str) -> str:
    """The first value of `name` in /proc/cpuinfo ("" where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith(name)), "")
    except OSError:
        return ""


def machine(device: str) -> str:
    """CPU model, cores, load and torch version (plus the GPU name for CUDA) for the table's caption."""
    cpu = cpuinfo_field("model name") or platform.processor() or "unknown CPU"
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    text = f"{cpu}, {os.cpu_count()} cores ({torch.get_num_threads()} torch threads){load}, torch {torch.__version__}"
    if device == "cuda":
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


def time_steps(device: str, channels_last: bool, dtype: torch.dtype | None, args: argparse.Namespace) -> list[float]:
    """Seconds per training step, after `args.warmup` untimed steps."""
    gen = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = MCJA(395, depth=50).to(device=device, memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=3.5e-4, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, *args.size, generator=gen).to(device=device, memory_format=fmt)
    labels = torch.randint(0, 395, (args.batch,), generator=gen).to(device)
    times = []
    for step in range(args.warmup + args.steps):
        _sync(device)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=dtype) if dtype else nullcontext():
            out = model(x)
        loss = F.cross_entropy(out.logits.float(), labels) + out.features.float().mean()
        loss.backward()
        opt.step()
        _sync(device)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    return times


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _size(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def print_table(device: str, args: argparse.Namespace) -> None:
    """Time each variant on `device` and print a markdown table under a caption naming the machine."""
    variants = VARIANTS
    skipped = device == "cpu" and not (args.bf16 or cpu_has_native_bf16())
    if skipped:
        variants = [v for v in VARIANTS if v[2] is None]
    print(f"\nResNet-50 MCJA training step, batch {args.batch}, {args.size[0]}x{args.size[1]}, {device}: {machine(device)}")
    if skipped:
        print("(bf16 autocast skipped: this CPU has no native bf16 instructions; --bf16 times it anyway)")
    print("\n| variant | step time, median (s) | min (s) | images/s | vs float32 |")
    print("|---|---:|---:|---:|---:|")
    base = None
    for name, channels_last, dtype in variants:
        times = time_steps(device, channels_last, dtype, args)
        median = statistics.median(times)
        base = base or median
        print(f"| {name} | {median:.3f} | {min(times):.3f} | {args.batch / median:.1f} | {base / median:.2f}x |", flush=True)


def main() -> None:
    """Parse the options and print one table per device."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=_size, default=(384, 192), help="HxW (default 384x192)")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all", help="default: CPU, and CUDA if present")
    parser.add_argument("--bf16", action="store_true", help="time bf16 autocast on a CPU without native bf16 too (slow)")
    args = parser.parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    for device in devices:
        print_table(device, args)


if __name__ == "__main__":
    main()
