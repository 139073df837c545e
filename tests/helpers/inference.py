"""A tiny random ResNet-18 MCJA, its checkpoint, pattern images and small image folders: for the inference, index,
serve and command tests (their fixtures live in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mcja.models import MCJA, checkpoint_payload

SIZE = (64, 32)  # (H, W) stored in the checkpoint's config
# ImageNet statistics written out here, so the tests do not depend on the package's constants.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def tiny_model(seed: int = 0) -> MCJA:
    """A random-weight ResNet-18 MCJA whose BN statistics are not the identity, in eval mode."""
    torch.manual_seed(seed)
    model = MCJA(num_classes=4, depth=18, pretrained=None)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def pattern_image(pid: int, variant: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """uint8 [H, W, 3]: horizontal colour bands chosen by `pid`, plus per-variant noise."""
    rng = np.random.default_rng(pid * 100 + variant)
    colours = np.random.default_rng(pid).integers(0, 256, size=(4, 3))
    rows = np.repeat(colours, -(-size[0] // 4), axis=0)[: size[0]]
    img = np.repeat(rows[:, None, :], size[1], axis=1).astype(np.int64)
    return np.clip(img + rng.integers(-12, 13, size=img.shape), 0, 255).astype(np.uint8)


def write_gallery(root: Path, ids: tuple[int, ...] = (1, 2, 3), per_id: int = 2, size: tuple[int, int] = SIZE) -> list[Path]:
    """`root/<pid>/<pid>_c1_<n>.png` pattern images (lossless, so decoding gives back the exact pixels)."""
    paths = []
    for pid in ids:
        for n in range(per_id):
            path = root / f"{pid:04d}" / f"{pid:04d}_c1_{n}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pattern_image(pid, n, size)).save(path)
            paths.append(path)
    return paths


def save_checkpoint(model: MCJA, path: Path) -> Path:
    """Our checkpoint format with a config saying the model runs at 64x32."""
    torch.save(checkpoint_payload(model, config={"data": {"image_size": list(SIZE)}}), path)
    return path


def reference_features(model: MCJA, images_u8: np.ndarray) -> torch.Tensor:
    """BN-neck features of uint8 [B, H, W, 3] images with the preprocessing written out: /255, mean, std."""
    x = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        return model((x - MEAN) / STD)


def write_feature_file(path: Path, gallery: Path, short: str | None = None) -> Path:
    """An `mcja extract`-style npz over the `gallery` fixture's images: each identity's first image visible, its
    second infrared, features near a per-identity direction. `short` names a column written one row short."""
    images = sorted(gallery.rglob("*.png"))
    pids = np.array([int(p.parent.name) for p in images])
    modalities = np.array([int(p.stem.endswith("_1")) for p in images])  # 0 visible, 1 infrared
    rng = np.random.default_rng(0)
    features = (np.eye(8)[pids] + 0.05 * rng.standard_normal((len(images), 8))).astype(np.float32)
    arrays = {"features": features, "paths": np.array([str(p) for p in images]), "pids": pids, "modalities": modalities}
    if short:
        arrays[short] = arrays[short][:-1]
    np.savez(path, **arrays)
    return path
