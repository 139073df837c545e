"""Protocol metrics of a trained model with test-time features in float32 vs bf16 autocast (CPU or GPU).

    mcja demo --out /tmp/demo        # once: a trained model on synthetic SYSU-MM01-layout data
    python benchmarks/bench_bf16_metrics.py --checkpoint /tmp/demo/run/best.pt --root /tmp/demo/data [--mser]

Runs `mcja test`'s protocol (api.test) twice on the same checkpoint, --amp off and --amp bf16, and prints each
setting's rank-1 / mAP / mINP side by side with the largest difference, and the wall time of each run. This
is the measurement behind amp=auto choosing bf16 on CPUs with native bf16 instructions (docs/deviations.md).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from mcja import api
from mcja.engine.runtime import cpu_has_native_bf16

KEYS = ("r1", "mAP", "mINP")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--root", required=True, help="the dataset folder (SYSU-MM01 layout)")
    ap.add_argument("--dataset", default="sysu")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mser", action="store_true", help="also compare the MSER re-ranked figures")
    args = ap.parse_args()
    runs, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for amp in ("off", "bf16"):
            start = time.perf_counter()
            runs[amp] = api.test(args.checkpoint, args.dataset, args.root, mser=args.mser, out=os.path.join(tmp, amp),
                                 device=args.device, progress=False, amp=amp)
            seconds[amp] = time.perf_counter() - start
    print(f"{args.checkpoint} on {args.dataset} ({args.device}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, native bf16 CPU: {cpu_has_native_bf16()}); protocol wall time float32 {seconds['off']:.1f} s, "
          f"bf16 {seconds['bf16']:.1f} s\n")
    print("| ranking | setting | " + " | ".join(f"{k} float32 | {k} bf16" for k in KEYS) + " | max abs diff (points) |")
    print("|---|---|" + "---:|" * (2 * len(KEYS) + 1))
    worst = 0.0
    for part in ("plain", "mser"):
        for name, f32 in runs["off"].get(part, {}).items():
            b16 = runs["bf16"][part][name]
            diff = max(abs(f32[k] - b16[k]) for k in KEYS)
            worst = max(worst, diff)
            cells = " | ".join(f"{f32[k]:.2f} | {b16[k]:.2f}" for k in KEYS)
            print(f"| {part} | {name} | {cells} | {diff:.2f} |")
    print(f"\nlargest difference: {worst:.2f} points")


if __name__ == "__main__":
    main()
