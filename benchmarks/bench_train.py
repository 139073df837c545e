"""Training throughput of ResNet-50 MCJA at 384x192: our input pipeline vs a per-image PIL pipeline, same model.

Each training step is split into data time (from file/cache to a normalised float batch on the training
device) and compute time (forward, ID + CMR losses, backward, Adam step). Both pipelines feed the same model
the same P x K batches of the same JPEGs, alternately, in the same run:

- ours: uint8 memory-mapped cache (built once beforehand, its one-time cost reported apart), batch gather,
  batched VIMC/flip/crop/erase augmentation (mcja.data) on the training device;
- reference: per image, PIL decode + resize + the same operations + ToTensor + normalise (bench_data.py's
  per-image pipeline), then stacked and copied to the device.

    python benchmarks/bench_train.py [--p 8] [--k 16] [--steps 2] [--size 384x192] [--device cpu|cuda] [--threads N]

Defaults: SYSU-MM01's P x K = 8 x 16 = batch 128. On a 2-core CPU one step takes about a minute and peaks at
about 15 GB of memory; pass a smaller --k there if needed.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_data import machine, pil_transform, write_jpegs  # noqa: E402

from mcja.data.augment import TrainAugment  # noqa: E402
from mcja.data.cache import ImageCache  # noqa: E402
from mcja.losses import CMRLoss, identity_loss  # noqa: E402
from mcja.models import MCJA  # noqa: E402


def pk_batches(ids: np.ndarray, p: int, k: int, steps: int, seed: int = 0) -> list[np.ndarray]:
    """`steps` batches of P identities x K images each (the first K/2 visible, the rest infrared)."""
    rng = np.random.default_rng(seed)
    people = np.unique(ids)
    return [np.concatenate([rng.permutation(np.flatnonzero(ids == pid))[:k]
                            for pid in rng.choice(people, p, replace=False)]) for _ in range(steps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--p", type=int, default=8, help="identities per batch (default 8)")
    parser.add_argument("--k", type=int, default=16, help="images per identity (default 16)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per pipeline (default 2)")
    parser.add_argument("--size", default="384x192")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.size.split("x"))
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n_ids = args.p * 2
    ids = np.repeat(np.arange(n_ids), args.k)
    modality = np.tile((np.arange(args.k) >= args.k // 2).astype(np.int64), n_ids)  # 0 visible, 1 infrared
    batches = pk_batches(ids, args.p, args.k, args.steps + 1)

    torch.manual_seed(0)
    model = MCJA(n_ids, depth=50).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3.5e-4, weight_decay=5e-4)
    cmr = CMRLoss(0.5)

    def compute(images: torch.Tensor, idx: np.ndarray) -> None:
        labels = torch.from_numpy(ids[idx]).to(device)
        modalities = torch.from_numpy(modality[idx]).to(device)
        features, logits = model(images)
        loss = identity_loss(logits.float(), labels) + cmr(features.float(), labels, modalities)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), len(ids))
        start = time.perf_counter()
        cache = ImageCache.build(paths, size, cache_dir=tmp, tag="bench-train", progress=False)
        build_rate = len(paths) / (time.perf_counter() - start)
        aug, g, py_rng = TrainAugment(size=size), torch.Generator().manual_seed(0), random.Random(0)
        modality_t = torch.from_numpy(modality)
        pipelines: dict[str, Callable[[np.ndarray], torch.Tensor]] = {
            "ours: cache + batched augmentation": lambda idx: aug(
                cache.batch(idx).to(device, non_blocking=True), modality_t[idx].to(device), g),
            "per-image PIL pipeline": lambda idx: torch.stack(
                [pil_transform(Image.open(paths[i]).convert("RGB"), modality[i] == 0, size, py_rng)
                 for i in idx]).to(device),
        }
        compute(pipelines["ours: cache + batched augmentation"](batches[0]), batches[0])  # warm-up step
        times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in pipelines}
        for idx in batches[1:]:
            for name, pipeline in pipelines.items():  # alternate, so load from elsewhere hits both alike
                sync()
                t0 = time.perf_counter()
                images = pipeline(idx)
                sync()
                t1 = time.perf_counter()
                compute(images, idx)
                sync()
                times[name][0].append(t1 - t0)
                times[name][1].append(time.perf_counter() - t1)

    batch = args.p * args.k
    where = machine() + (f", GPU {torch.cuda.get_device_name()}" if device.type == "cuda" else "")
    print(f"\nResNet-50 MCJA training, batch {args.p}x{args.k} = {batch}, {size[0]}x{size[1]}, {device.type}, "
          f"median of {args.steps} steps. Machine: {where}")
    print(f"One-time cache build (decode + resize): {build_rate:,.0f} images/s. "
          f"Peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB\n")
    print("| input pipeline | data s/step | data images/s | compute s/step | data share | training images/s | vs PIL |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    medians = {name: (statistics.median(data), statistics.median(comp)) for name, (data, comp) in times.items()}
    base = batch / sum(medians["per-image PIL pipeline"])
    for name, (d, c) in medians.items():
        rate = batch / (d + c)
        print(f"| {name} | {d:.3f} | {batch / d:,.0f} | {c:.2f} | {100 * d / (d + c):.1f}% | {rate:.2f} | {rate / base:.2f}x |")

if __name__ == "__main__":
    main()
