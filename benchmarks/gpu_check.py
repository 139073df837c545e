"""One prepared check of the GPU path: correctness on CUDA against the CPU, then throughput against the goals.

    python benchmarks/gpu_check.py [--device cuda] [--json gpu_check.json] [--only train extract ...]
    python benchmarks/gpu_check.py --device cpu --tiny      # the dry run CI executes (small sizes, gloo)

Checks (benchmarks/gpu_checks.py): batched VIMC augmentation with the same generator state, soft rank and CMR
value + gradient, MSER distances + metrics on SYSU-sized 4-view features, evaluate_sysu on device tensors (each vs
the CPU, tolerances stated there); ResNet-50 MCJA training at 384x192, batch 128, through the real data path with
bf16 autocast + channels-last (images/s, data / forward-backward / optimizer split, peak memory), the same with
train.compile=true, fp16 with the grad scaler; DDP at world size 1 through torchrun and the engine, checkpoint
written and resumed; extraction in bf16 at batch 256 vs float32; SYSU-MM01 protocol and MSER multi-shot timings.
Prints a markdown table (the machine and GPU named), writes JSON with --json, and exits 1 naming every failed
check. Throughput goals are reported met or not; they do not fail the run (a dry run on a CPU cannot meet them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_checks import CHECKS, TINY, CheckFailed, Sizes  # noqa: E402

# (goal, check, figure, comparison, target): the throughput goals for one H200-class GPU
GOALS = [
    ("training images/s, bf16 + channels-last, data path included", "train", "images_per_s", ">=", 3000.0),
    ("training with data path / constant batch", "train", "data_path_ratio", ">=", 0.8),
    ("extraction images/s, bf16, batch 256", "extract", "bf16_images_per_s", ">=", 10000.0),
    ("SYSU-MM01 protocol, 4 settings x 10 trials (s)", "protocol_time", "seconds", "<", 0.2),
    ("MSER multi-shot, 10 trials (s)", "mser_time", "seconds", "<", 10.0),
]


def machine(device: torch.device) -> str:
    """The CPU, torch and (on CUDA) the GPU, in one line."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        text += f", GPU {props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"
    return text


def run_check(name: str, device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """Run one check; a mismatch or an error becomes a failed row naming it (traceback on stderr)."""
    start = time.perf_counter()
    row: dict[str, Any] = {"check": name, "ok": True, "figures": {}, "error": ""}
    try:
        row["figures"] = CHECKS[name](device, sizes)
    except CheckFailed as err:
        row.update(ok=False, error=str(err))
    except Exception as err:  # any crash is a failed check, reported with the others
        traceback.print_exc()
        row.update(ok=False, error=f"{type(err).__name__}: {err}")
    row["seconds"] = time.perf_counter() - start
    # one line per check as it ends: a run cut short by a time limit still shows what it measured
    detail = json.dumps(row["figures"], default=str) if row["ok"] else row["error"]
    print(f"[gpu_check] {name}: {'ok' if row['ok'] else 'FAILED'} ({row['seconds']:.1f} s) {detail}", file=sys.stderr,
          flush=True)
    return row


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def goal_rows(rows: dict[str, dict[str, Any]], judged: bool) -> list[dict[str, Any]]:
    """Each goal with its measured value and met / not met (or 'not judged' on a dry run or a failed check)."""
    out = []
    for goal, check, key, op, target in GOALS:
        value = rows.get(check, {}).get("figures", {}).get(key)
        if value is None or not judged:
            status = "not judged (dry run)" if not judged else "not measured"
        else:
            status = "met" if (value >= target if op == ">=" else value < target) else "NOT met"
        out.append({"goal": goal, "target": f"{op} {target:g}", "measured": value, "status": status})
    return out


def markdown(rows: list[dict[str, Any]], goals: list[dict[str, Any]], header: str) -> str:
    """The checks table and the goals table."""
    lines = [header, "", "| check | result | seconds | figures |", "|---|---|---:|---|"]
    for r in rows:
        figures = "; ".join(f"{k} {_fmt(v)}" for k, v in r["figures"].items()) if r["ok"] else r["error"].replace("\n", " ")
        lines.append(f"| {r['check']} | {'ok' if r['ok'] else '**FAILED**'} | {r['seconds']:.1f} | {figures} |")
    lines += ["", "| goal | target | measured | status |", "|---|---|---:|---|"]
    lines += [f"| {g['goal']} | {g['target']} | {_fmt(g['measured']) if g['measured'] is not None else '-'} | "
              f"{g['status']} |" for g in goals]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the checks; print the tables; 0 when every check passed, else 1."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a dry run")
    ap.add_argument("--tiny", action="store_true", help="small sizes (ResNet-18, 64x32, 2 trials): a dry run")
    ap.add_argument("--only", nargs="+", choices=sorted(CHECKS), help="run only these checks")
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available here; use --device cpu --tiny for a dry run", file=sys.stderr)
        return 2
    sizes = TINY if args.tiny else Sizes()
    started = time.perf_counter()
    rows = [run_check(name, device, sizes) for name in (args.only or list(CHECKS))]
    judged = device.type == "cuda" and not args.tiny
    goals = goal_rows({r["check"]: r for r in rows if r["ok"]}, judged)
    header = (f"gpu_check on {device} ({'tiny sizes, dry run' if args.tiny else 'full sizes'}): {machine(device)}; "
              f"{time.perf_counter() - started:.0f} s in all")
    print(markdown(rows, goals, header))
    failed = [r["check"] for r in rows if not r["ok"]]
    if args.json:
        report = {"device": str(device), "machine": machine(device), "tiny": args.tiny, "passed": not failed,
                  "failed": failed, "checks": rows, "goals": goals, "seconds": time.perf_counter() - started}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, default=str)
    if failed:
        print(f"gpu_check FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
