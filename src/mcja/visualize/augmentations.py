"""A picture of training images under each augmentation, for checking `mcja.data.augment` by eye."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from mcja.data import augment as A
from mcja.data.images import load_resized
from mcja.data.records import VISIBLE, Sample
from mcja.data.registry import load_dataset
from mcja.errors import DatasetError
from mcja.input_size import DEFAULT_IMAGE_SIZE
from mcja.utils.io import atomic_path, ensure_writable_file

COLUMNS = ("original", "hue jitter", "weighted grey", "channel cut-mix", "spectrum jitter",
           "flip", "pad + crop", "erasing", "full pipeline")
COLOUR_COLUMNS = frozenset(COLUMNS[1:5])
CHANNELS = "RGB"


def augmentation_grid(dataset: str, root: str | os.PathLike, out: str | os.PathLike, trial: int = 1, n: int = 4,
                      size: Sequence[int] | None = None, seed: int = 0) -> dict[str, Any]:
    """Pick n training images, apply every op forced on, write the labelled grid to the PNG `out`.

    `size` (HxW) defaults to the training image size of the configs.
    """
    size = tuple(size or DEFAULT_IMAGE_SIZE)
    out = ensure_writable_file(out, "--out")
    data = load_dataset(dataset, root, trial)
    samples = pick_samples(data.train, n, seed)
    images = torch.from_numpy(np.stack([load_resized(s.path, size) for s in samples])).permute(0, 3, 1, 2)
    modality = torch.tensor([s.modality for s in samples])
    cells = augmentation_cells(images, modality, torch.Generator().manual_seed(seed))
    rows = [f"{'visible' if s.modality == VISIBLE else 'infrared'}  id {s.pid}  cam {s.camera}" for s in samples]
    with atomic_path(out) as tmp:
        render_grid(cells, rows).save(tmp, format="PNG")
    return {"out": out, "images": len(samples), "columns": COLUMNS}


def pick_samples(train: list[Sample], n: int, seed: int) -> list[Sample]:
    """n training records, visible ones first, half of each modality where the data allows."""
    if not train:
        raise DatasetError("the dataset has no training images to show")
    rng = np.random.default_rng(seed)
    by_mod = [[s for s in train if s.modality == m] for m in (0, 1)]
    want_ir = min(len(by_mod[1]), n // 2) if by_mod[0] else min(len(by_mod[1]), n)
    want = [min(len(by_mod[0]), n - want_ir), want_ir]
    return [group[i] for group, k in zip(by_mod, want) for i in sorted(rng.choice(len(group), k, replace=False))]


def augmentation_cells(images: torch.Tensor, modality: torch.Tensor, g: torch.Generator) -> list[list[tuple]]:
    """Per image, per column: (uint8 [3, H, W] or None for 'visible only', caption)."""
    n, size = len(images), tuple(images.shape[-2:])
    aug = A.TrainAugment(size=size)
    p = aug.draw(n, g)
    hue = torch.where(p.hue < 0, -aug.hue, aug.hue)  # the largest shift training uses, easiest to see
    erase_box = A.sample_boxes(n, size, *A.ERASE_BOX, g)  # forced on, unlike p.erase_box
    columns = [
        (images, [""] * n),
        (A.adjust_hue(images, hue), [f"hue {h:+.2f} (the extreme)" for h in hue.tolist()]),
        (A.weighted_grayscale(images, p.weights),
         ["w " + "/".join(f"{v:.2f}" for v in (w / w.sum()).tolist()) for w in p.weights]),
        (A.channel_cutmix(images, p.cc_box, p.cc_channels[:, 0], p.cc_channels[:, 1]),
         [f"{CHANNELS[b]} + {CHANNELS[f]} in {_box(box)}" for (b, f), box in zip(p.cc_channels.tolist(), p.cc_box)]),
        (A.spectrum_jitter(images, p.sj_channel, p.sj_alpha),
         [f"{CHANNELS[c]}, alpha {a:.2f}" for c, a in zip(p.sj_channel.tolist(), p.sj_alpha.tolist())]),
        (A.hflip(images), [""] * n),
        (A.pad_crop(images, p.offset[:, 0], p.offset[:, 1], aug.padding),
         [f"top {t} left {left} (pad {aug.padding})" for t, left in p.offset.tolist()]),
        (_denormalize(A.erase(A.normalize(images), erase_box)), [_box(b) for b in erase_box]),
        (_denormalize(aug.apply(images, modality, p)), [_pipeline_caption(p, i, int(modality[i])) for i in range(n)]),
    ]
    return [[(None, "visible only") if name in COLOUR_COLUMNS and modality[i] != VISIBLE else (col[i], caps[i])
             for name, (col, caps) in zip(COLUMNS, columns)] for i in range(n)]


def _box(box: torch.Tensor) -> str:
    top, left, h, w = box.tolist()
    return f"{h}x{w} at ({top},{left})" if h else "no box fitted"


def _pipeline_caption(p: A.AugmentParams, i: int, modality: int) -> str:
    """What the full pipeline did to image i."""
    steps = [A.COLOUR_NAMES[int(p.colour[i])]] if modality == VISIBLE and p.colour[i] != A.NO_COLOUR else []
    steps += ["flip"] if p.flip[i] else []
    steps += ["erase"] if p.erase_box[i, 2] > 0 else []
    return ", ".join(steps) or "crop only"


def _denormalize(x: torch.Tensor) -> torch.Tensor:
    """Normalised float images back to uint8 for display."""
    mean = torch.tensor(A.IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(A.IMAGENET_STD).view(3, 1, 1)
    return (x * std + mean).mul_(255).round_().clamp_(0, 255).to(torch.uint8)


def render_grid(cells: list[list[tuple]], row_titles: list[str]) -> Image.Image:
    """Lay the cells out with column titles on top and each cell's caption under it."""
    h, w = next(c[0] for row in cells for c in row if c[0] is not None).shape[-2:]
    font = ImageFont.load_default(size=max(10, w // 13))
    line, gap = font.size + 6, 6
    cell_w, cell_h = w + gap, h + 2 * line + gap
    top = line + gap
    grid = Image.new("RGB", (cell_w * len(COLUMNS) + gap, top + cell_h * len(cells) + gap), "white")
    draw = ImageDraw.Draw(grid)
    for j, name in enumerate(COLUMNS):
        draw.text((gap + j * cell_w, gap), name, fill="black", font=font)
    for i, row in enumerate(cells):
        y = top + i * cell_h
        draw.text((gap, y + 2), row_titles[i], fill="black", font=font)
        for j, (image, caption) in enumerate(row):
            x = gap + j * cell_w
            if image is None:
                draw.rectangle((x, y + line, x + w - 1, y + line + h - 1), fill=(225, 225, 225))
            else:
                grid.paste(Image.fromarray(image.permute(1, 2, 0).numpy()), (x, y + line))
            draw.text((x, y + line + h + 2), caption, fill="dimgray", font=font)
    return grid
