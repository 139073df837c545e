"""Training augmentation (VIMC colour ops, flip, pad+crop, erasing) batched on tensors, and MSER test views.

Every op takes one image [3, H, W] or a batch [B, 3, H, W] with explicit parameters (one value, or one
per image). TrainAugment draws all random parameters from a CPU generator first, then applies them
batched on the images' device, so CPU and GPU runs with the same generator state agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Callable

import torch
import torch.nn.functional as F

from mcja.data.records import VISIBLE
from mcja.input_size import DEFAULT_IMAGE_SIZE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Colour-step codes in AugmentParams.colour (0 = the image keeps its colours).
NO_COLOUR, HUE, WG, CC, SJ = range(5)
COLOUR_NAMES = ("none", "hue jitter", "weighted grayscale", "channel cut-mix", "spectrum jitter")
ERASE_BOX = ((0.02, 0.30), (0.3, 3.3))  # random erasing: area fraction and aspect-ratio ranges (the reference's)


# ---------------------------------------------------------------------------------------------- helpers
def _as_batch(img: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """View one image [C, H, W] as a batch of one; report whether it was single."""
    if img.dim() == 3:
        return img.unsqueeze(0), True
    if img.dim() != 4:
        raise ValueError(f"expected an image [3, H, W] or a batch [B, 3, H, W], got shape {tuple(img.shape)}")
    return img, False


def _param(value: Any, x: torch.Tensor, dtype: torch.dtype, shape: tuple[int, ...] = ()) -> torch.Tensor:
    """A per-image parameter as a tensor [B, *shape] on x's device (one value is shared by all images)."""
    t = torch.as_tensor(value, dtype=dtype).to(x.device)
    if t.dim() == len(shape):
        t = t.expand(x.shape[0], *shape)
    if tuple(t.shape) != (x.shape[0], *shape):
        raise ValueError(f"parameter of shape {tuple(t.shape)} does not fit {x.shape[0]} images (per image {shape})")
    return t


def _channel(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Channel c[i] of image i: [B, H, W]."""
    return x[torch.arange(x.shape[0], device=x.device), c]


def _grey3(grey: torch.Tensor, single: bool) -> torch.Tensor:
    """A single-channel batch [B, H, W] copied to three channels (one image if `single`)."""
    out = grey.unsqueeze(1).repeat(1, 3, 1, 1)
    return out[0] if single else out


def _truncate_u8(x: torch.Tensor) -> torch.Tensor:
    """Float 0..255 to uint8 by truncation, as numpy's uint8 cast and PIL's blend do."""
    return x.clamp_(0, 255).to(torch.uint8)


def box_mask(box: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Boolean [B, H, W] masks of boxes [B, 4] = (top, left, height, width); a 0-sized box is empty."""
    rows = torch.arange(size[0], device=box.device)
    cols = torch.arange(size[1], device=box.device)
    top, left, h, w = box.unbind(1)
    in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])
    return in_rows[:, :, None] & in_cols[:, None, :]


def sample_boxes(
    n: int, size: tuple[int, int], scale: tuple[float, float], ratio: tuple[float, float],
    generator: torch.Generator, attempts: int = 10,
) -> torch.Tensor:
    """Random Erasing's rectangles [n, 4] = (top, left, h, w): the first of `attempts` tries that fits
    strictly inside, or an empty box (h = w = 0) when none does (torchvision's RandomErasing rule)."""
    H, W = size
    u_area = torch.rand(n, attempts, generator=generator, dtype=torch.float64)
    u_ratio = torch.rand(n, attempts, generator=generator, dtype=torch.float64)
    u_pos = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    area = H * W * (scale[0] + (scale[1] - scale[0]) * u_area)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u_ratio)
    h, w = torch.sqrt(area * aspect).round(), torch.sqrt(area / aspect).round()
    fits = (h < H) & (w < W)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # argmax returns the first maximum
    found = fits.any(1)
    h = torch.where(found, h.gather(1, first).squeeze(1), 0.0)
    w = torch.where(found, w.gather(1, first).squeeze(1), 0.0)
    top = torch.floor(u_pos[:, 0] * (H - h + 1))
    left = torch.floor(u_pos[:, 1] * (W - w + 1))
    return torch.stack([top, left, h, w], 1).long()


# ---------------------------------------------------------------------------------------------- colour ops (uint8)
def weighted_grayscale(img: torch.Tensor, weights: Any) -> torch.Tensor:
    """WG: grey = w·(R, G, B) with weights normalised to sum 1, truncated to uint8, in all three channels."""
    x, single = _as_batch(img)
    w = _param(weights, x, torch.float32, (3,))
    w = w / w.sum(1, keepdim=True)
    r, g, b = x.float().unbind(1)
    # Explicit elementwise terms (not a reduction) keep CPU and GPU results bit-identical.
    grey = w[:, 0, None, None] * r + w[:, 1, None, None] * g + w[:, 2, None, None] * b
    return _grey3(_truncate_u8(grey), single)


def channel_cutmix(img: torch.Tensor, box: Any, bg: Any, fg: Any) -> torch.Tensor:
    """CC: channel `bg` with the box (top, left, h, w) taken from channel `fg`, in all three channels."""
    x, single = _as_batch(img)
    box = _param(box, x, torch.int64, (4,))
    bg, fg = _param(bg, x, torch.int64), _param(fg, x, torch.int64)
    mixed = torch.where(box_mask(box, x.shape[-2:]), _channel(x, fg), _channel(x, bg))
    return _grey3(mixed, single)


def spectrum_jitter(img: torch.Tensor, channel: Any, alpha: Any) -> torch.Tensor:
    """SJ: (1 - alpha)·D + alpha·image with D = `channel` in all three channels (PIL blend: truncated)."""
    x, single = _as_batch(img)
    c = _param(channel, x, torch.int64)
    a = _param(alpha, x, torch.float32)[:, None, None, None]
    d = _channel(x, c).unsqueeze(1).float()
    out = _truncate_u8(d + a * (x.float() - d))  # PIL's blend formula, in float32 like PIL
    return out[0] if single else out


def adjust_hue(img: torch.Tensor, hue_factor: Any) -> torch.Tensor:
    """Rotate the hue by hue_factor (a fraction of the circle, [-0.5, 0.5]) keeping HSV saturation and
    value, in float like torchvision's tensor adjust_hue; uint8 in, uint8 out (rounded)."""
    x, single = _as_batch(img)
    f = _param(hue_factor, x, torch.float32)[:, None, None]
    r, g, b = x.float().unbind(1)
    maxc = torch.maximum(torch.maximum(r, g), b)
    delta = maxc - torch.minimum(torch.minimum(r, g), b)
    d = torch.where(delta > 0, delta, torch.ones_like(delta))
    # Hue in sixths of the circle (HSV's piecewise definition), then rotated.
    h6 = torch.where(maxc == r, (g - b).div_(d),
                     torch.where(maxc == g, (b - r).div_(d).add_(2.0), (r - g).div_(d).add_(4.0)))
    # HSV -> RGB without sector tables: channel n in (R 5, G 3, B 1) is V - V*S*clamp(min(k, 4 - k), 0, 1)
    # with k = (n + rotated h6) mod 6, V*S being the max - min range that a hue rotation keeps.
    # min(k, 4 - k) = 2 - |k - 2|; in-place steps because fresh large CPU buffers cost page faults.
    k = (h6 + 6.0 * f).unsqueeze(1) + torch.tensor([5.0, 3.0, 1.0], device=x.device).view(1, 3, 1, 1)
    t = k.remainder_(6.0).sub_(2.0).abs_().neg_().add_(2.0).clamp_(0.0, 1.0)
    out = t.mul_(delta.unsqueeze(1)).neg_().add_(maxc.unsqueeze(1)).round_().clamp_(0, 255).to(torch.uint8)
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------- geometry, erasing
def hflip(img: torch.Tensor) -> torch.Tensor:
    """Mirror left-right (one image or a batch)."""
    return img.flip(-1)


def pad_crop(img: torch.Tensor, top: Any, left: Any, padding: int, fill: float = 127,
             flip: Any = False) -> torch.Tensor:
    """Mirror where `flip`, pad `padding` px with `fill` on every side, then crop back to the input size
    at (top, left) of the padded image (torchvision's RandomHorizontalFlip then RandomCrop(padding))."""
    x, single = _as_batch(img)
    n, c, H, W = x.shape
    padded = F.pad(x, (padding,) * 4, value=fill)
    flipped = torch.nonzero(_param(flip, x, torch.bool)).squeeze(1)
    if len(flipped):  # the padding is symmetric, so mirroring the padded copy is mirroring the image
        padded[flipped] = padded[flipped].flip(-1)
    # A view holding every crop window of every image; indexing it copies one window per image.
    s = padded.stride()
    windows = padded.as_strided((n, 2 * padding + 1, 2 * padding + 1, c, H, W), (s[0], s[2], s[3], s[1], s[2], s[3]))
    batch = torch.arange(n, device=x.device)
    out = windows[batch, _param(top, x, torch.int64), _param(left, x, torch.int64)]
    return out[0] if single else out


def erase(img: torch.Tensor, box: Any, value: float = 0.0, inplace: bool = False) -> torch.Tensor:
    """Random Erasing's write: `value` inside the box (top, left, h, w), the image elsewhere."""
    x, single = _as_batch(img)
    mask = box_mask(_param(box, x, torch.int64, (4,)), x.shape[-2:])[:, None]
    fill = torch.tensor(value, dtype=x.dtype, device=x.device)
    out = torch.where(mask, fill, x, out=x) if inplace else torch.where(mask, fill, x)
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------- normalisation, views
def normalize(images: torch.Tensor, mean: tuple = IMAGENET_MEAN, std: tuple = IMAGENET_STD) -> torch.Tensor:
    """uint8 (0..255) or float (0..1) images [..., 3, H, W] -> float32 (x/255 - mean) / std."""
    scale = 255.0 if images.dtype == torch.uint8 else 1.0
    # (x - 255 mean) / (255 std): ToTensor + Normalize in two in-place passes (equal up to float rounding).
    m = torch.tensor(mean, device=images.device).view(3, 1, 1) * scale
    s = torch.tensor(std, device=images.device).view(3, 1, 1) * scale
    return images.to(torch.float32, copy=True).sub_(m).div_(s)


def spectral_views(images: torch.Tensor) -> torch.Tensor:
    """MSER's four views of [B, 3, H, W] images, same dtype (normalise each view afterwards):
    [4, B, 3, H, W] = the images, then R, G and B each copied to all three channels."""
    x, _ = _as_batch(images)
    return torch.stack([x] + [x[:, c : c + 1].expand_as(x) for c in range(3)])


# ---------------------------------------------------------------------------------------------- the training pipeline
@dataclass
class AugmentParams:
    """Every random choice for a batch of B images (CPU tensors); TrainAugment.apply uses exactly these."""

    colour: torch.Tensor  # [B] NO_COLOUR, HUE, WG, CC or SJ (infrared images ignore it)
    hue: torch.Tensor  # [B] hue factor
    weights: torch.Tensor  # [B, 3] WG weights (normalised by the op)
    cc_box: torch.Tensor  # [B, 4] CC rectangle (top, left, h, w), empty if none fitted
    cc_channels: torch.Tensor  # [B, 2] CC (background, foreground) channels, distinct
    sj_channel: torch.Tensor  # [B]
    sj_alpha: torch.Tensor  # [B]
    flip: torch.Tensor  # [B] bool
    offset: torch.Tensor  # [B, 2] crop (top, left) in the padded image
    erase_box: torch.Tensor  # [B, 4] empty where erasing does not fire

    def select(self, idx: torch.Tensor) -> "AugmentParams":
        """The parameters of images `idx`."""
        return AugmentParams(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


class TrainAugment:
    """The spec's training transform on uint8 batches [B, 3, H, W] (any device) -> normalised float32."""

    def __init__(self, size: tuple[int, int] = DEFAULT_IMAGE_SIZE, padding: int = 10, color_jitter: bool = True,
                 wg: bool = True, cc: bool = True, sj: bool = True, flip: bool = True, crop: bool = True,
                 erase: bool = True, hue: float = 0.2) -> None:
        self.size, self.padding, self.hue = (int(size[0]), int(size[1])), int(padding), float(hue)
        # A disabled colour op stays in the uniform choice as a no-op, like the reference's NoTransform.
        self.colour_enabled = torch.tensor([False, color_jitter, wg, cc, sj])
        self.flip, self.crop, self.erase = flip, crop, erase

    def draw(self, n: int, generator: torch.Generator) -> AugmentParams:
        """Draw every random parameter for n images (the same draws whatever is enabled)."""
        g = generator
        choice = torch.randint(0, 4, (n,), generator=g) + 1
        fires = torch.rand(n, generator=g) < 0.5
        colour = torch.where(fires & self.colour_enabled[choice], choice, NO_COLOUR)
        hue = (torch.rand(n, generator=g) * 2 - 1) * self.hue
        weights = torch.rand(n, 3, generator=g)
        cc_box = sample_boxes(n, self.size, (0.02, 0.33), (0.3, 3.3), g)
        bg = torch.randint(0, 3, (n,), generator=g)
        fg = (bg + torch.randint(1, 3, (n,), generator=g)) % 3
        sj_channel = torch.randint(0, 3, (n,), generator=g)
        sj_alpha = torch.rand(n, generator=g)
        flip = (torch.rand(n, generator=g) < 0.5) & self.flip
        offset = torch.randint(0, 2 * self.padding + 1, (n, 2), generator=g)
        if not self.crop:
            offset = torch.full_like(offset, self.padding)
        erase_box = sample_boxes(n, self.size, *ERASE_BOX, g)
        erase_box[~((torch.rand(n, generator=g) < 0.5) & self.erase)] = 0
        return AugmentParams(colour, hue, weights, cc_box, torch.stack([bg, fg], 1), sj_channel, sj_alpha,
                             flip, offset, erase_box)

    def __call__(self, images: torch.Tensor, modality: Any, generator: torch.Generator) -> torch.Tensor:
        """Augment uint8 images (one or a batch) of the given modalities (0 visible, 1 infrared)."""
        x, _ = _as_batch(images)
        return self.apply(images, modality, self.draw(x.shape[0], generator))

    def apply(self, images: torch.Tensor, modality: Any, params: AugmentParams) -> torch.Tensor:
        """Apply drawn parameters: colour step (visible only), flip + pad + crop, normalise, erase."""
        x, single = _as_batch(images)
        if x.dtype != torch.uint8 or tuple(x.shape[-2:]) != self.size or x.shape[1] != 3:
            raise ValueError(f"expected uint8 images [B, 3, {self.size[0]}, {self.size[1]}], "
                             f"got {x.dtype} {tuple(x.shape)}")
        visible = torch.as_tensor(modality).cpu().reshape(-1).expand(x.shape[0]) == VISIBLE
        x = self.colour(x, torch.where(visible, params.colour, NO_COLOUR), params)
        if self.crop or self.flip:
            x = pad_crop(x, params.offset[:, 0], params.offset[:, 1], self.padding, flip=params.flip)
        out = normalize(x)
        if params.erase_box[:, 2:].any():
            out = erase(out, params.erase_box, inplace=True)
        return out[0] if single else out

    def colour(self, x: torch.Tensor, colour: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """The colour step: each image gets the op coded in `colour` (CPU [B]), ops batched per kind."""
        out = x
        for code, op in _COLOUR_OPS.items():
            idx = torch.nonzero(colour == code).squeeze(1)
            if len(idx):
                out = out.clone() if out is x else out
                on_device = idx.to(x.device)
                out[on_device] = op(x[on_device], params.select(idx))
        return out


_COLOUR_OPS: dict[int, Callable[[torch.Tensor, AugmentParams], torch.Tensor]] = {
    HUE: lambda x, p: adjust_hue(x, p.hue),
    WG: lambda x, p: weighted_grayscale(x, p.weights),
    CC: lambda x, p: channel_cutmix(x, p.cc_box, p.cc_channels[:, 0], p.cc_channels[:, 1]),
    SJ: lambda x, p: spectrum_jitter(x, p.sj_channel, p.sj_alpha),
}
