"""Feature-extraction throughput of a ResNet-50 MCJA (random weights) at 384x192: PyTorch vs onnxruntime.

Rows, measured in the same run on the same images: FeatureExtractor from JPEG files (decode + resize in
threads) and from uint8 batches; a straight per-image PyTorch loop (batch 1) as the reference; onnxruntime
on the exported graph (normalisation in numpy included); PyTorch on CUDA (float32 and bf16) when available.

    python benchmarks/bench_extract.py [--images 16] [--batch 16] [--repeats 1] [--reference-images 4] [--threads N]

The per-image loop is timed on the first `--reference-images` images only (it is the slow one); images/s
figures are comparable all the same.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from bench_data import images_per_second, machine, write_jpegs  # benchmarks/ is on sys.path when run as a script

from mcja.data.augment import IMAGENET_MEAN, IMAGENET_STD
from mcja.data.images import load_resized
from mcja.inference import FeatureExtractor, export_onnx
from mcja.models import MCJA, checkpoint_payload

SIZE = (384, 192)


def per_image_reference(model: torch.nn.Module, images: np.ndarray) -> Callable[[np.ndarray], object]:
    """The straight way: one image at a time, ToTensor + Normalize by hand, batch-1 forward."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)

    @torch.inference_mode()
    def run(idx: np.ndarray) -> list[torch.Tensor]:
        return [model(((torch.from_numpy(images[i]).permute(2, 0, 1).float() / 255 - mean) / std)[None]) for i in idx]

    return run


def onnxruntime_run(onnx_file: Path, images: np.ndarray) -> Callable[[np.ndarray], object] | None:
    """onnxruntime (CPU) on a batch: numpy normalisation + session.run; None without the onnx extra."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    mean = np.array(IMAGENET_MEAN, dtype=np.float32).reshape(1, 3, 1, 1) * 255
    std = np.array(IMAGENET_STD, dtype=np.float32).reshape(1, 3, 1, 1) * 255
    return lambda idx: session.run(None, {"images": (images[idx].transpose(0, 3, 1, 2).astype(np.float32) - mean) / std})


def measure(tmp: Path, n: int, batch: int, repeats: int, n_reference: int) -> tuple[list[tuple], str]:
    """(pipeline, device, images/s) rows and the ONNX parity line."""
    torch.manual_seed(0)
    checkpoint = tmp / "mcja-r50.pt"
    model = MCJA(num_classes=395, depth=50).eval()
    torch.save(checkpoint_payload(model, config={"data": {"image_size": list(SIZE)}}), checkpoint)
    paths = write_jpegs(tmp, n)
    images = np.stack([load_resized(p, SIZE) for p in paths])  # uint8 [N, H, W, 3]
    batches = [np.arange(s, min(s + batch, n)) for s in range(0, n, batch)]
    cpu = FeatureExtractor(checkpoint, device="cpu", batch_size=batch, amp="off")
    reference = {("per-image PyTorch loop (batch 1), reference", "cpu"): per_image_reference(model, images)}
    rows = list(images_per_second(reference, [np.arange(min(n_reference, n))], repeats).items())
    runs: dict[tuple, Callable[[np.ndarray], object]] = {
        ("FeatureExtractor, JPEG files -> features (float32)", "cpu"): lambda idx: cpu([paths[i] for i in idx]),
        ("FeatureExtractor, uint8 batch -> features (float32, amp=off)", "cpu"): lambda idx: cpu(images[idx]),
    }
    auto = FeatureExtractor(checkpoint, device="cpu", batch_size=batch)  # amp=auto: bf16 on a bf16 CPU
    if auto.runtime.amp_dtype is not None:
        runs[("FeatureExtractor, uint8 batch -> features (bf16 autocast, amp=auto)", "cpu")] = lambda idx: auto(images[idx])
        diff = float((auto(images[batches[0]]) - cpu(images[batches[0]])).abs().max())
        parity_bf16 = f"; CPU bf16 vs float32 normalised features max abs diff {diff:.1e}"
    else:
        parity_bf16 = "; this CPU has no native bf16: amp=auto stays float32"
    report = export_onnx(checkpoint, tmp / "mcja-r50.onnx", dynamic_batch=True)
    check = report["parity"]
    parity = (f"ONNX vs PyTorch max abs diff {check['max_abs_diff']:.1e} (batch {check['batch']})"
              if "max_abs_diff" in check else f"ONNX parity {check['status']}")
    ort_run = onnxruntime_run(tmp / "mcja-r50.onnx", images)
    if ort_run:
        runs[("onnxruntime, uint8 batch -> features", "cpu")] = ort_run
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        for amp in ("off", "bf16"):
            gpu = FeatureExtractor(checkpoint, device="cuda", batch_size=batch, amp=amp)
            runs[(f"FeatureExtractor, uint8 batch -> features ({'float32' if amp == 'off' else 'bf16 autocast'})", name)] = \
                lambda idx, gpu=gpu: gpu(images[idx])
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    rows += images_per_second(runs, batches, repeats, sync).items()
    return [(*key, rate) for key, rate in rows], parity + parity_bf16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--reference-images", type=int, default=4, help="images timed in the per-image loop")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        rows, parity = measure(Path(tmp), args.images, args.batch, args.repeats, args.reference_images)
    try:
        import onnxruntime

        versions = f"onnxruntime {onnxruntime.__version__}"
    except ImportError:
        versions = "onnxruntime not installed"
    base = rows[0][2]
    print(f"\nMachine: {machine()}, {versions}")
    print(f"ResNet-50 MCJA, random weights, {SIZE[0]}x{SIZE[1]}, {args.images} images ({args.reference_images} in the "
          f"per-image loop), batch {args.batch}, best of {args.repeats}, after one warm-up batch; {parity}\n")
    print("| pipeline | device | images/s | vs per-image loop |")
    print("|---|---|---:|---:|")
    for what, device, rate in rows:
        print(f"| {what} | {device} | {rate:,.1f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
