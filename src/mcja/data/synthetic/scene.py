"""What a synthetic camera adds to a person: background, lighting, colour cast, scale, noise, blur.

Visible cameras differ in background (indoor walls or outdoor ground and foliage), light level and
direction, colour cast and how large people appear; infrared cameras see a cool, noisy scene with a
few warm or cold objects, and each has its own gain and blur.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

VIEWS = ("front", "back", "left", "right")


@dataclass(frozen=True)
class CameraStyle:
    """The look of one camera; colours are 0..255 floats, thermal values 0..1."""

    infrared: bool
    wall: np.ndarray            # RGB, or a temperature for infrared cameras
    floor: np.ndarray
    horizon: float              # floor starts at this fraction of the height
    objects: tuple[tuple[float, float, float, float, np.ndarray], ...]  # x0, y0, x1, y1 (fractions), value
    cast: np.ndarray            # per-channel gain (visible)
    light: float                # overall gain
    light_side: float           # -1..1: light from the left or right
    scale: tuple[float, float]  # range of person sizes
    views: np.ndarray           # probabilities of VIEWS
    noise: float                # pixel noise (0..255 for visible, 0..1 for thermal)
    blur: float                 # gaussian sigma in output pixels


def camera_style(rng: np.random.Generator, infrared: bool, outdoor: bool) -> CameraStyle:
    """Draw one camera's look; `outdoor` picks ground and foliage colours instead of walls."""
    views = rng.dirichlet(np.full(len(VIEWS), 2.0))
    lo = rng.uniform(0.8, 0.95)
    if infrared:
        base = rng.uniform(0.1, 0.22)
        wall, floor = np.array(base), np.array(base + rng.uniform(-0.04, 0.06))
        objects = _objects(rng, lambda: np.array(np.clip(base + rng.choice([-1, 1]) * rng.uniform(0.04, 0.15), 0, 0.5)))
        cast, light, noise, blur = np.ones(3), rng.uniform(0.9, 1.1), rng.uniform(0.01, 0.025), rng.uniform(0.3, 0.6)
    else:
        wall = rng.uniform(*((60, 160) if outdoor else (120, 220)), size=3)
        floor = rng.uniform(*((70, 150) if outdoor else (90, 190)), size=3)
        if outdoor:
            wall = wall * np.array([0.8, 1.1, 0.8])  # foliage and buildings lean green-grey
        objects = _objects(rng, lambda: (wall + rng.uniform(30, 230, size=3)) / 2)  # muted: scenery, not people
        cast, light, noise, blur = rng.uniform(0.8, 1.2, size=3), rng.uniform(0.7, 1.1), rng.uniform(2, 6), 0.0
    return CameraStyle(
        infrared=infrared, wall=wall, floor=floor, horizon=float(rng.uniform(0.6, 0.85)), objects=objects,
        cast=cast, light=float(light), light_side=float(rng.uniform(-1, 1)),
        scale=(float(lo), float(min(lo + 0.15, 1.0))),
        views=views, noise=float(noise), blur=float(blur),
    )


def background(style: CameraStyle, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """The scene behind a person: [H, W, 3] 0..255 for visible cameras, [H, W] 0..1 for infrared ones."""
    h, w = shape
    channels = () if style.infrared else (3,)
    img = np.empty((h, w, *channels), dtype=np.float32)
    horizon = int(h * (style.horizon + rng.uniform(-0.04, 0.04)))
    img[:horizon] = style.wall
    img[horizon:] = style.floor
    shift = rng.uniform(-0.3, 0.3)  # the person stands in a different spot each time, so the scene slides
    for x0, y0, x1, y1, value in style.objects:
        c0, c1 = int((x0 + shift) * w), int((x1 + shift) * w)
        img[int(y0 * h):int(y1 * h), max(c0, 0):max(c1, 0)] = value
    field = smooth_field(rng, shape, (4, 3)) * np.float32(0.05 if style.infrared else 18.0)
    img += field if style.infrared else field[..., None]
    return img


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Low-frequency noise of unit scale: a coarse random grid bilinearly enlarged to `shape` (float32)."""
    coarse = rng.standard_normal(cells, dtype=np.float32)
    return _bilinear(shape[0], cells[0]) @ coarse @ _bilinear(shape[1], cells[1]).T


def _bilinear(n: int, cells: int) -> np.ndarray:
    """[n, cells] weights that interpolate `cells` evenly spaced samples at `n` pixel centres."""
    pos = np.clip((np.arange(n) + 0.5) * cells / n - 0.5, 0, cells - 1)
    lo = np.minimum(pos.astype(int), cells - 2) if cells > 1 else np.zeros(n, int)
    frac = pos - lo
    weights = np.zeros((n, cells), dtype=np.float32)
    weights[np.arange(n), lo] = 1 - frac
    if cells > 1:
        weights[np.arange(n), lo + 1] = frac
    return weights


def _objects(
    rng: np.random.Generator, value: Callable[[], np.ndarray]
) -> tuple[tuple[float, float, float, float, np.ndarray], ...]:
    """A few rectangles (doors, windows, poles, radiators) at fixed places in this camera's scene."""
    found = []
    for _ in range(int(rng.integers(1, 4))):
        x0, y0 = rng.uniform(-0.2, 0.9), rng.uniform(0.0, 0.6)
        x1, y1 = x0 + rng.uniform(0.08, 0.4), y0 + rng.uniform(0.1, 0.5)
        found.append((float(x0), float(y0), float(x1), float(y1), value()))
    return tuple(found)
