"""What makes a synthetic person recognisable: body shape, clothing, hair, carried objects, heat signature.

Colours come from a small shared palette (many people share a shirt colour), and each garment's
thermal emissivity is drawn independently of its colour, so colour alone cannot link a visible
image to an infrared one; shape, textures, hair, sleeves and bags are what both modalities share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RGB = tuple[int, int, int]

PALETTE: tuple[RGB, ...] = (
    (30, 30, 34), (235, 235, 230), (128, 128, 128), (36, 50, 110), (170, 36, 40), (190, 170, 120), (44, 110, 60),
)
# Few emissivity levels: like the palette, a heat level is shared by many people and identifies no one alone.
HEAT_LEVELS = (0.35, 0.5, 0.65, 0.8)
SKIN_TONES: tuple[RGB, ...] = ((240, 205, 180), (215, 170, 135), (175, 125, 90), (120, 80, 55))
HAIR_COLOURS: tuple[RGB, ...] = ((25, 20, 18), (70, 45, 30), (150, 110, 60), (200, 190, 170))
TOP_PATTERNS = ("plain", "hstripes", "vstripes", "checks", "print")
BOTTOMS = ("trousers", "shorts", "skirt")
CARRIED = ("none", "bag_left", "bag_right", "backpack")
HAIR_STYLES = ("short", "long", "bald", "cap")


@dataclass(frozen=True)
class Identity:
    """One synthetic person; sizes are fractions of the person's height, heat values are in [0, 1]."""

    pid: int
    female: bool
    height: float          # fraction of the image height covered at scale 1
    shoulder: float        # half shoulder width
    hip: float             # half hip width
    head: float            # head radius
    leg: float             # hip-to-floor length
    skin: RGB
    hair_style: str
    hair: RGB
    hat: RGB
    top: tuple[RGB, RGB]   # plain colour, pattern colour
    top_pattern: str
    top_period: float      # stripes or checks per torso height
    long_sleeves: bool
    bottom_kind: str
    bottom: tuple[RGB, RGB]
    bottom_checks: bool
    shoes: RGB
    carried: str
    bag: RGB
    bag_size: tuple[float, float]      # width, height
    heat_top: tuple[float, float]      # emissivity of plain and pattern parts
    heat_bottom: tuple[float, float]
    heat_hair: float
    heat_bag: float
    heat_skin: float


def sample_identity(pid: int, rng: np.random.Generator) -> Identity:
    """Draw a person; the same generator state always gives the same person."""
    female = bool(rng.random() < 0.5)
    pattern = str(rng.choice(TOP_PATTERNS, p=[0.3, 0.2, 0.15, 0.15, 0.2]))
    carried = str(rng.choice(CARRIED, p=[0.3, 0.2, 0.2, 0.3]))
    top_e = float(rng.choice(HEAT_LEVELS) + rng.normal(0, 0.02))
    bottom_e = float(rng.choice(HEAT_LEVELS) + rng.normal(0, 0.02))
    return Identity(
        pid=pid,
        female=female,
        height=float(rng.uniform(0.7, 0.95)),
        shoulder=float(rng.uniform(0.09, 0.16) * (0.9 if female else 1.0)),
        hip=float(rng.uniform(0.07, 0.12)),
        head=float(rng.uniform(0.05, 0.078)),
        leg=float(rng.uniform(0.42, 0.54)),
        skin=_pick(SKIN_TONES, rng),
        hair_style=str(rng.choice(HAIR_STYLES, p=[0.35, 0.35, 0.1, 0.2] if female else [0.55, 0.1, 0.15, 0.2])),
        hair=_pick(HAIR_COLOURS, rng),
        hat=_colour(rng),
        top=_two_colours(rng),
        top_pattern=pattern,
        top_period=float(rng.uniform(2.0, 4.5)),
        long_sleeves=bool(rng.random() < 0.5),
        bottom_kind=str(rng.choice(BOTTOMS, p=[0.6, 0.2, 0.2] if female else [0.75, 0.25, 0.0])),
        bottom=_two_colours(rng),
        bottom_checks=bool(rng.random() < 0.2),
        shoes=_colour(rng),
        carried=carried,
        bag=_colour(rng),
        bag_size=(float(rng.uniform(0.13, 0.22)), float(rng.uniform(0.12, 0.2))),
        heat_top=(top_e, _contrast(top_e, rng)),
        heat_bottom=(bottom_e, _contrast(bottom_e, rng)),
        heat_hair=float(rng.uniform(0.5, 0.68)),
        heat_bag=float(rng.uniform(0.3, 0.5)),  # near the body: warmer than the scene, cooler than clothes
        heat_skin=float(rng.uniform(0.88, 0.97)),
    )


def _pick(options: tuple[RGB, ...], rng: np.random.Generator) -> RGB:
    """One of `options`, slightly varied so shared colours are similar rather than equal."""
    base = np.asarray(options[int(rng.integers(len(options)))], dtype=np.float64)
    return tuple(int(v) for v in np.clip(base + rng.normal(0, 6, 3), 0, 255))  # type: ignore[return-value]


def _colour(rng: np.random.Generator) -> RGB:
    """A clothing colour from the shared palette."""
    return _pick(PALETTE, rng)


def _two_colours(rng: np.random.Generator) -> tuple[RGB, RGB]:
    """A garment's plain and pattern colours, apart in brightness so its texture survives greyscale views."""
    luminance = np.asarray(PALETTE) @ np.array([0.299, 0.587, 0.114])
    first = int(rng.integers(len(PALETTE)))
    second = int(rng.choice(np.flatnonzero(np.abs(luminance - luminance[first]) >= 60)))
    return _pick(PALETTE[first:first + 1], rng), _pick(PALETTE[second:second + 1], rng)


def _contrast(value: float, rng: np.random.Generator) -> float:
    """A second emissivity clearly apart from `value`, so textures show in the thermal image."""
    step = rng.uniform(0.15, 0.3)
    return float(value - step if value - step >= 0.2 and (value + step > 0.95 or rng.random() < 0.5) else value + step)
