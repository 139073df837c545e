"""Reading images: always 3-channel RGB, resized the way the reference does (PIL bilinear)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from mcja.errors import DatasetError


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image as RGB (infrared files too); a missing or corrupt file raises DatasetError naming it."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DatasetError(f"{path}: cannot read image ({err.__class__.__name__}: {err})") from None


def resize_rgb(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Resize to size = (height, width) with PIL bilinear filtering; returns uint8 [H, W, 3]."""
    h, w = size
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def load_resized(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """Load `path` as RGB and resize to (height, width): uint8 [H, W, 3]."""
    return resize_rgb(load_rgb(path), size)
