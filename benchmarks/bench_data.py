"""Training-input throughput: uint8 cache + batched tensor augmentation vs a per-image PIL pipeline.

Both do the spec's visible/infrared training transform (colour step, flip, pad 10 + crop, to float,
normalise, random erasing) on the same temporary JPEGs in the same run, and the table gives images/s.

    python benchmarks/bench_data.py [--images 256] [--batch 128] [--size 384x192] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps

from mcja.data.augment import IMAGENET_MEAN, IMAGENET_STD, TrainAugment
from mcja.data.cache import ImageCache


def write_jpegs(folder: Path, n: int, seed: int = 0) -> list[str]:
    """n JPEGs of about 288x144 (sizes vary like SYSU-MM01's), smooth colours plus sensor-like noise."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = int(rng.integers(256, 321)), int(rng.integers(120, 161))
        base = Image.fromarray(rng.integers(0, 256, (12, 6, 3), dtype=np.uint8)).resize((w, h), Image.BILINEAR)
        pixels = np.asarray(base, dtype=np.int16) + rng.integers(-12, 13, (h, w, 3))
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


# ---------------------------------------------------------------------------------------------- the per-image reference
def _erase_box(rng: random.Random, h: int, w: int, scale: tuple[float, float]) -> tuple[int, int, int, int] | None:
    """torchvision RandomErasing.get_params, with Python's random."""
    for _ in range(10):
        area = h * w * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
        eh, ew = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        if eh < h and ew < w:
            return rng.randint(0, h - eh), rng.randint(0, w - ew), eh, ew
    return None


def _colour(img: Image.Image, rng: random.Random) -> Image.Image:
    """One of hue jitter / WG / CC / SJ, each firing with p = 0.5, the way the reference does it on PIL images."""
    op = rng.randrange(4)
    if rng.random() >= 0.5:
        return img
    if op == 0:  # ColorJitter(hue=0.2), PIL path
        h, s, v = img.convert("HSV").split()
        shifted = (np.asarray(h, dtype=np.int16) + int(rng.uniform(-0.2, 0.2) * 255)) % 256
        return Image.merge("HSV", (Image.fromarray(shifted.astype(np.uint8), "L"), s, v)).convert("RGB")
    a = np.asarray(img)
    if op == 1:
        w = np.array([rng.random() for _ in range(3)])
        grey = (a @ (w / w.sum())).astype(np.uint8)
    elif op == 2:
        bg, fg = rng.sample(range(3), 2)
        grey = a[:, :, bg].copy()
        box = _erase_box(rng, *grey.shape, (0.02, 0.33))
        if box:
            t, left, bh, bw = box
            grey[t : t + bh, left : left + bw] = a[t : t + bh, left : left + bw, fg]
    else:
        d = Image.fromarray(np.repeat(a[:, :, rng.randrange(3), None], 3, 2))
        return Image.blend(d, img, rng.random())
    return Image.fromarray(np.repeat(grey[:, :, None], 3, 2))


def pil_transform(img: Image.Image, visible: bool, size: tuple[int, int], rng: random.Random) -> torch.Tensor:
    """Resize, colour step (visible), flip, pad + crop, ToTensor, Normalize, RandomErasing: one image."""
    img = img.resize((size[1], size[0]), Image.BILINEAR)
    if visible:
        img = _colour(img, rng)
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    top, left = rng.randint(0, 20), rng.randint(0, 20)
    img = ImageOps.expand(img, 10, fill=(127, 127, 127)).crop((left, top, left + size[1], top + size[0]))
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1).float().div(255)
    x = (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    if rng.random() < 0.5 and (box := _erase_box(rng, *size, (0.02, 0.30))):
        t, left, bh, bw = box
        x[:, t : t + bh, left : left + bw] = 0
    return x


# ---------------------------------------------------------------------------------------------- timing
def images_per_second(runs: dict[tuple, Callable[[np.ndarray], object]], batches: list[np.ndarray], repeats: int,
                      sync: Callable[[], None] = lambda: None) -> dict[tuple, float]:
    """Best-of-`repeats` throughput of each pipeline over all batches; repeats interleave the pipelines so
    that load from other processes on a shared machine hits them alike. One warm-up batch each."""
    best = {name: math.inf for name in runs}
    for name, run in runs.items():
        run(batches[0])
    sync()
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            for idx in batches:
                run(idx)
            sync()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: sum(len(b) for b in batches) / t for name, t in best.items()}


def machine() -> str:
    """CPU model, cores, torch version and threads."""
    model = platform.processor() or "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def measure(paths: list[str], cache_dir: str, size: tuple[int, int], batch: int, repeats: int) -> list[tuple]:
    """(pipeline, device, images/s) rows; every pipeline sees the same batches of the same images."""
    rng = np.random.default_rng(1)
    n = len(paths)
    visible = rng.random(n) < 0.65  # SYSU-MM01's training share of visible images
    batches = [rng.permutation(n)[:batch] for _ in range(max(1, n // batch))]
    start = time.perf_counter()
    cache = ImageCache.build(paths, size, cache_dir=cache_dir, tag="bench", progress=False)
    rows = [("cache build: decode + resize once (one-time)", "cpu", n / (time.perf_counter() - start))]

    py_rng = random.Random(0)
    decoded = [Image.fromarray(cache[i]) for i in range(n)]  # already at `size`: resize is a no-op
    runs = {
        ("per-image PIL: decode, resize, ops, ToTensor, normalise, erase", "cpu"):
            lambda idx: torch.stack([pil_transform(Image.open(paths[i]).convert("RGB"), visible[i], size, py_rng)
                                     for i in idx]),
        ("per-image PIL ops on already decoded images", "cpu"):
            lambda idx: torch.stack([pil_transform(decoded[i], visible[i], size, py_rng) for i in idx]),
    }
    aug, modality, g = TrainAugment(size=size), torch.from_numpy((~visible).astype(np.int64)), torch.Generator()
    runs[("ours: cache gather + batched augmentation", "cpu")] = lambda idx: aug(cache.batch(idx), modality[idx], g)
    if torch.cuda.is_available():
        runs[("ours: cache gather + batched augmentation", torch.cuda.get_device_name())] = \
            lambda idx: aug(cache.batch(idx).cuda(non_blocking=True), modality[idx], g)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    rows += [(*key, rate) for key, rate in images_per_second(runs, batches, repeats, sync).items()]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", default="384x192")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(write_jpegs(Path(tmp), args.images), tmp, size, args.batch, args.repeats)
    base = rows[1][2]
    print(f"\nMachine: {machine()}")
    print(f"{args.images} JPEGs of ~288x144 -> {size[0]}x{size[1]}, batch {args.batch}, best of {args.repeats}\n")
    print("| pipeline | device | images/s | vs per-image PIL |")
    print("|---|---|---:|---:|")
    for what, device, rate in rows:
        print(f"| {what} | {device} | {rate:,.0f} | {rate / base:.1f}x |")


if __name__ == "__main__":
    main()
