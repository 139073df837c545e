"""Reading images: always 3-channel RGB, resized the way the reference does (PIL bilinear).

16-bit and float images (PIL modes I;16*, I, F: radiometric thermal cameras write them) are scaled to 8 bits
from their own value range; PIL's own conversion would clip them to solid white.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from mcja.errors import DatasetError

WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image as RGB (infrared files too); a missing or corrupt file raises DatasetError naming it."""
    try:
        with warnings.catch_warnings():  # PIL warns of an image between 1x and 2x its limit: _refuse_huge refuses it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)  # the header only: the size is known before any pixel is decoded
        with img:
            _refuse_huge(img, path)
            img.load()
            return to_8bit(img).convert("RGB") if img.mode in WIDE_MODES else img.convert("RGB")
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except Image.DecompressionBombError as err:  # PIL refuses to even open it (not an OSError)
        raise DatasetError(f"{path}: refusing to decode a possible decompression bomb ({err})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DatasetError(f"{path}: cannot read image ({err.__class__.__name__}: {err})") from None


def _refuse_huge(img: Image.Image, path: str | os.PathLike) -> None:
    """DatasetError for an image above PIL's pixel limit, before its pixels are decoded (PIL itself only warns
    between 1x and 2x the limit, then decodes gigabytes)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and img.width * img.height > limit:
        raise DatasetError(f"{path}: refusing to decode a possible decompression bomb ({img.width}x{img.height} "
                           f"pixels, more than PIL's limit of {limit})")


def to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit / integer / float single-channel image as 8-bit grey, its min..max mapped to 0..255.

    A constant image becomes all zeros; NaN pixels (float files) count as the minimum.
    """
    values = np.asarray(img).astype(np.float64)
    finite = np.isfinite(values)
    lo, hi = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 0.0)
    if hi <= lo:
        return Image.new("L", img.size, 0)
    scaled = np.floor((np.where(finite, values, lo) - lo) * (255.0 / (hi - lo)) + 0.5)
    return Image.fromarray(scaled.astype(np.uint8))  # 2-D uint8: mode L


def resize_rgb(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Resize to size = (height, width) with PIL bilinear filtering; returns uint8 [H, W, 3]."""
    h, w = size
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def load_resized(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """Load `path` as RGB and resize to (height, width): uint8 [H, W, 3]."""
    return resize_rgb(load_rgb(path), size)
