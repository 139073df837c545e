"""Test-time features: BN-neck outputs of cached uint8 images, optionally in the four MSER views."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from mcja.data.augment import normalize, spectral_views
from mcja.data.cache import ImageCache
from mcja.data.loader import iterate_batches
from mcja.engine.runtime import Runtime

# On a CPU, throughput falls once a forward's activations outgrow the caches: measured on this project's 2-core
# machine, ResNet-50 at 384x192 gives 8.6 images/s in forwards of 4 images and 5.8 in forwards of 16, while
# ResNet-18 at 128x64 keeps gaining up to 64. Forwards of about this many input pixels sit near the best of both.
CPU_FORWARD_PIXELS = 320_000


def cpu_forward_size(height: int, width: int) -> int:
    """Images per forward pass on a CPU for inputs of height x width."""
    return max(1, CPU_FORWARD_PIXELS // (height * width))


@torch.no_grad()
def embed_batch(model: torch.nn.Module, images: torch.Tensor, rt: Runtime, views: int = 1) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float32 [V, B, D] on the CPU (V = 1, or 4: original, R, G, B).

    On a CPU the forward runs over slices of cpu_forward_size images (eval mode: each image's features are
    its own, so slicing changes nothing but speed); on a GPU over the whole batch.
    """
    x = images.to(rt.device, non_blocking=True)
    stacked = spectral_views(x) if views == 4 else x.unsqueeze(0)
    step = cpu_forward_size(*x.shape[-2:]) if rt.device.type == "cpu" else max(x.shape[0], 1)
    out = []
    for view in stacked:
        with rt.autocast():
            out.append(torch.cat([model(rt.to_input(normalize(view[s : s + step]))).float()
                                  for s in range(0, max(view.shape[0], 1), step)]))
    return torch.stack(out).cpu()


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    cache: ImageCache,
    rt: Runtime,
    batch_size: int = 128,
    views: int = 1,
    desc: str = "features",
    progress: bool = True,
) -> torch.Tensor:
    """Features of every cached image, in cache order: float32 [V, N, D] on the CPU."""
    if views not in (1, 4):
        raise ValueError(f"views must be 1 or 4, got {views}")
    was_training = model.training
    model.eval()
    chunks = []
    total = (len(cache) + batch_size - 1) // batch_size
    for _, images in tqdm(iterate_batches(cache, batch_size), total=total, desc=desc, leave=False, disable=not progress):
        chunks.append(embed_batch(model, images, rt, views))
    model.train(was_training)
    if not chunks:
        raise ValueError("no images to extract features from")
    return torch.cat(chunks, dim=1)
