"""Drawing a synthetic pedestrian: a map of body parts, then shaded as a visible or a thermal image.

The part map (skin, hair, top, bottom, bag, ...) and the texture map are drawn once per image at
twice the output size; a visible camera turns them into colours, an infrared camera into heat
(skin warm, clothes by their emissivity, textures as emissivity changes), so both modalities share
the silhouette, textures and carried objects but not the colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from mcja.data.synthetic.identity import Identity
from mcja.data.synthetic.scene import VIEWS, CameraStyle, background

SUPERSAMPLE = 2  # drawn at twice the size and averaged down, for smooth edges
BG, SKIN, HAIR, HAT, TOP, PRINT, BOTTOM, SHOES, BAG, STRAP = range(10)


@dataclass(frozen=True)
class Pose:
    """How a person stands in one image: facing (front/back/left/right), size, offset and walking phase."""

    view: str
    scale: float
    dx: float
    dy: float
    stride: float


@dataclass(frozen=True)
class Figure:
    """Body landmarks of one image in supersampled pixels; `facing` is +1 right, -1 left, 0 front/back."""

    cx: float
    top: float
    hp: float
    r: float
    shoulder_y: float
    hip_y: float
    foot_y: float
    sw: float
    hw: float
    facing: int


def sample_pose(rng: np.random.Generator, views: np.ndarray, scale: tuple[float, float]) -> Pose:
    """A pose: `views` are the probabilities of VIEWS, `scale` the range of person sizes."""
    return Pose(
        view=str(rng.choice(VIEWS, p=views)),
        scale=float(rng.uniform(*scale)),
        dx=float(rng.uniform(-0.08, 0.08)),
        dy=float(rng.uniform(-0.02, 0.02)),
        stride=float(rng.uniform(-1, 1)),
    )


def render_person(
    person: Identity, style: CameraStyle, rng: np.random.Generator, size: tuple[int, int], pose: Pose | None = None
) -> np.ndarray:
    """One image of `person` as camera `style` sees it: uint8 [H, W, 3] (infrared: three equal channels).

    The pose is drawn from `rng` as the camera tends to see people unless given (paired cameras share it).
    """
    shape = (size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE)
    pose = pose or sample_pose(rng, style.views, style.scale)
    fig = figure(person, pose, shape)
    parts = draw_parts(person, pose, fig, shape)
    pattern = texture(person, fig, parts)
    scene = background(style, rng, shape)
    if style.infrared:
        return _thermal(person, fig, parts, pattern, scene, style, rng)
    return _visible(person, fig, parts, pattern, scene, style, rng)


def figure(person: Identity, pose: Pose, shape: tuple[int, int]) -> Figure:
    """Where the head, shoulders, hips and feet are; side views make the body narrower."""
    h, w = shape
    hp = person.height * h * pose.scale
    foot = h * (0.97 + pose.dy)
    narrow = 0.6 if pose.view in ("left", "right") else 1.0
    return Figure(
        cx=w * (0.5 + pose.dx), top=foot - hp, hp=hp, r=person.head * hp,
        shoulder_y=foot - hp + 2.15 * person.head * hp + 0.02 * hp, hip_y=foot - person.leg * hp, foot_y=foot,
        sw=person.shoulder * hp * narrow, hw=person.hip * hp * narrow,
        facing={"left": -1, "right": 1}.get(pose.view, 0),
    )


def draw_parts(person: Identity, pose: Pose, fig: Figure, shape: tuple[int, int]) -> np.ndarray:
    """The part map [H, W] uint8 (BG, SKIN, ...), painted back to front."""
    canvas = Image.new("L", (shape[1], shape[0]), BG)
    draw = ImageDraw.Draw(canvas)
    bag_near = _bag_in_front(person, pose)
    if not bag_near:
        _draw_carried(draw, person, pose, fig)
    _draw_hair_behind(draw, person, pose, fig)
    _draw_legs(draw, person, pose, fig)
    _draw_torso(draw, person, pose, fig)
    _draw_arms(draw, person, pose, fig)
    _draw_head(draw, person, pose, fig)
    if bag_near:
        _draw_carried(draw, person, pose, fig)
    return np.asarray(canvas)


def texture(person: Identity, fig: Figure, parts: np.ndarray) -> np.ndarray:
    """Where garments show their second colour / emissivity: stripes, checks, prints (bool [H, W])."""
    ys = np.arange(parts.shape[0], dtype=np.float32)[:, None]
    xs = np.arange(parts.shape[1], dtype=np.float32)[None, :]
    v = np.floor((ys - fig.shoulder_y) / (fig.hip_y - fig.shoulder_y) * person.top_period)
    u = np.floor((xs - fig.cx) / (2 * fig.sw) * person.top_period + 0.5)
    top = {"hstripes": v, "vstripes": u, "checks": u + v}.get(person.top_pattern)
    pattern = parts == PRINT
    if top is not None:
        pattern |= (parts == TOP) & (top % 2 == 1)
    if person.bottom_checks:
        checks = np.floor((ys - fig.hip_y) / (fig.foot_y - fig.hip_y) * 6) + np.floor((xs - fig.cx) / fig.hw * 2)
        pattern |= (parts == BOTTOM) & (checks % 2 == 1)
    return pattern


def _visible(person: Identity, fig: Figure, parts: np.ndarray, pattern: np.ndarray, scene: np.ndarray,
             style: CameraStyle, rng: np.random.Generator) -> np.ndarray:
    """Colours per part and texture, body shading, camera light and cast, noise; averaged to output size."""
    body = _lookup(_part_values(person, visible=True), parts, pattern) * _roundness(fig, parts.shape[1])[:, None]
    img = _downsample(np.where((parts == BG)[..., None], scene, body))
    xs = np.linspace(-1, 1, img.shape[1], dtype=np.float32)
    gain = (1 + 0.25 * style.light_side * xs)[:, None] * (style.cast * rng.uniform(0.93, 1.07, size=3))
    img *= (gain * style.light * rng.uniform(0.85, 1.15)).astype(np.float32)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(style.noise)
    return np.clip(img, 0, 255).astype(np.uint8)


def _thermal(person: Identity, fig: Figure, parts: np.ndarray, pattern: np.ndarray, scene: np.ndarray,
             style: CameraStyle, rng: np.random.Generator) -> np.ndarray:
    """Heat per part and texture (no colour), warmer body core, blur, gain and noise; three equal channels."""
    core = 0.85 + 0.15 * _roundness(fig, parts.shape[1])
    body = _lookup(_part_values(person, visible=False), parts, pattern) * core
    heat = _downsample(np.where(parts == BG, scene, body))
    heat = ndimage.gaussian_filter(heat, style.blur) * np.float32(style.light * rng.uniform(0.9, 1.1))
    heat += rng.standard_normal(heat.shape, dtype=np.float32) * np.float32(style.noise)
    grey = np.clip(heat * 255, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _lookup(values: np.ndarray, parts: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Per-pixel value of `values` [part, plain/texture, ...] for the part map and texture map."""
    flat = values.reshape(-1, *values.shape[2:])
    return np.take(flat, parts.astype(np.intp) * 2 + pattern, axis=0)


def _part_values(person: Identity, visible: bool) -> np.ndarray:
    """Colour (visible, [part, 2, 3]) or heat (thermal, [part, 2]) of each part id, plain and textured."""
    if visible:
        strap = tuple(int(c * 0.6) for c in person.bag)
        plain = [(0, 0, 0), person.skin, person.hair, person.hat, person.top[0], person.top[1], person.bottom[0],
                 person.shoes, person.bag, strap]
        textured = plain[:TOP] + [person.top[1], person.top[1], person.bottom[1]] + plain[BOTTOM + 1:]
    else:
        # A cap and shoes are not worn on bare skin: cooler than the clothes.
        plain = [0.0, person.heat_skin, person.heat_hair, person.heat_top[1] * 0.8, person.heat_top[0],
                 person.heat_top[1], person.heat_bottom[0], 0.4, person.heat_bag, person.heat_bag]
        textured = plain[:TOP] + [person.heat_top[1], person.heat_top[1], person.heat_bottom[1]] + plain[BOTTOM + 1:]
    return np.stack([np.asarray(plain, np.float32), np.asarray(textured, np.float32)], axis=1)


def _roundness(fig: Figure, width: int) -> np.ndarray:
    """Per-column shading that makes the body look round: 1 at its centre line, darker toward the sides."""
    xs = np.arange(width, dtype=np.float32)
    side = np.clip(((xs - fig.cx) / (1.6 * max(fig.sw, 1.0))) ** 2, 0, 1)
    return (1 - 0.35 * side).astype(np.float32)


def _downsample(img: np.ndarray) -> np.ndarray:
    """Average 2 x 2 blocks (SUPERSAMPLE is 2); strided sums are several times faster than reshape-mean."""
    return (img[0::2, 0::2] + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2]) * np.float32(0.25)


def _bag_in_front(person: Identity, pose: Pose) -> bool:
    """Whether the carried object is drawn over the body (near side) or behind it."""
    if pose.view in ("front", "back"):
        return True
    # Facing right, a person's right side is toward the camera.
    return person.carried == ("bag_right" if pose.view == "right" else "bag_left")


def _line(draw: ImageDraw.ImageDraw, p0: tuple[float, float], p1: tuple[float, float], width: float, part: int) -> None:
    """A thick segment with round ends (limbs, straps)."""
    draw.line([p0, p1], fill=part, width=max(int(round(width)), 1))
    for x, y in (p0, p1):
        draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=part)


def _draw_legs(draw: ImageDraw.ImageDraw, person: Identity, pose: Pose, fig: Figure) -> None:
    """Two legs and shoes; the bottom garment covers them to the ankle (trousers) or the knee."""
    shoe_h = 0.035 * fig.hp
    ankle_y = fig.foot_y - shoe_h
    knee_y = (fig.hip_y + ankle_y) / 2
    width = 0.75 * fig.hw if fig.facing == 0 else 1.3 * fig.hw
    if fig.facing == 0:
        spread = fig.hw * 0.55 + 0.02 * fig.hp * abs(pose.stride)
        legs = [(fig.cx + s * fig.hw * 0.5, fig.cx + s * spread) for s in (-1, 1)]
    else:
        legs = [(fig.cx, fig.cx + s * pose.stride * 0.14 * fig.hp) for s in (-1, 1)]
    trousers = person.bottom_kind == "trousers"
    for hip_x, ankle_x in legs:
        _line(draw, (hip_x, fig.hip_y), (ankle_x, ankle_y), width, BOTTOM if trousers else SKIN)
        if person.bottom_kind == "shorts":
            knee_x = (hip_x + ankle_x) / 2
            _line(draw, (hip_x, fig.hip_y), (knee_x * 0.9 + hip_x * 0.1, knee_y - 0.02 * fig.hp), width * 1.1, BOTTOM)
        toe = fig.facing * 0.035 * fig.hp
        draw.ellipse([ankle_x - width * 0.6 + min(toe, 0), ankle_y - shoe_h * 0.3,
                      ankle_x + width * 0.6 + max(toe, 0), fig.foot_y], fill=SHOES)
    if person.bottom_kind == "skirt":
        flare = 1.6 if fig.facing == 0 else 1.9
        waist = fig.hip_y - 0.03 * fig.hp
        draw.polygon([(fig.cx - fig.hw * 1.05, waist), (fig.cx + fig.hw * 1.05, waist),
                      (fig.cx + fig.hw * flare, knee_y), (fig.cx - fig.hw * flare, knee_y)], fill=BOTTOM)
    else:
        band = 0.03 * fig.hp  # the waistband joins the legs under the top
        draw.rectangle([fig.cx - fig.hw * 1.02, fig.hip_y - band, fig.cx + fig.hw * 1.02, fig.hip_y + band], fill=BOTTOM)


def _draw_torso(draw: ImageDraw.ImageDraw, person: Identity, pose: Pose, fig: Figure) -> None:
    """Neck, then the top garment over the waistband, and a chest print seen from the front."""
    neck = 0.35 * fig.r
    draw.rectangle([fig.cx - neck, fig.top + 1.6 * fig.r, fig.cx + neck, fig.shoulder_y + 0.02 * fig.hp], fill=SKIN)
    y0, y1 = fig.shoulder_y, fig.hip_y + 0.025 * fig.hp
    draw.polygon([(fig.cx - fig.sw * 0.8, y0 - 0.01 * fig.hp), (fig.cx + fig.sw * 0.8, y0 - 0.01 * fig.hp),
                  (fig.cx + fig.sw, y0 + 0.035 * fig.hp), (fig.cx + fig.hw * 1.05, y1),
                  (fig.cx - fig.hw * 1.05, y1), (fig.cx - fig.sw, y0 + 0.035 * fig.hp)], fill=TOP)
    if person.top_pattern == "print" and pose.view == "front":
        cy, rad = y0 + 0.35 * (fig.hip_y - y0), 0.45 * fig.sw
        box = [fig.cx - rad, cy - rad * 0.8, fig.cx + rad, cy + rad * 0.8]
        (draw.ellipse if person.pid % 2 else draw.rectangle)(box, fill=PRINT)


def _draw_arms(draw: ImageDraw.ImageDraw, person: Identity, pose: Pose, fig: Figure) -> None:
    """Arms hang at the sides (front/back) or swing with the stride (side views); sleeves short or long."""
    width = 0.055 * fig.hp
    hand_y = fig.hip_y + 0.04 * fig.hp
    if fig.facing == 0:
        arms = [((fig.cx + s * fig.sw * 0.92, fig.shoulder_y + 0.03 * fig.hp),
                 (fig.cx + s * (fig.sw + 0.025 * fig.hp), hand_y)) for s in (-1, 1)]
    else:
        arms = [((fig.cx, fig.shoulder_y + 0.03 * fig.hp), (fig.cx - pose.stride * 0.12 * fig.hp, hand_y))]
    reach = 0.92 if person.long_sleeves else 0.42
    for shoulder, hand in arms:
        _line(draw, shoulder, hand, width, SKIN)
        sleeve_end = (shoulder[0] + reach * (hand[0] - shoulder[0]), shoulder[1] + reach * (hand[1] - shoulder[1]))
        _line(draw, shoulder, sleeve_end, width * 1.15, TOP)


def _draw_hair_behind(draw: ImageDraw.ImageDraw, person: Identity, pose: Pose, fig: Figure) -> None:
    """Long hair falls behind the head to the shoulders."""
    if person.hair_style != "long":
        return
    back = -fig.facing * 0.35 * fig.r
    x0, x1 = fig.cx + back - 0.95 * fig.r, fig.cx + back + 0.95 * fig.r
    box = [x0, fig.top + 0.2 * fig.r, x1, fig.shoulder_y + 0.09 * fig.hp]
    draw.rounded_rectangle(box, radius=0.6 * fig.r, fill=HAIR)


def _draw_head(draw: ImageDraw.ImageDraw, person: Identity, pose: Pose, fig: Figure) -> None:
    """Head (face from the front and sides), hair on top or all over from behind, or a cap."""
    hx, r = fig.cx + fig.facing * 0.25 * fig.r, fig.r
    head = [hx - 0.85 * r, fig.top, hx + 0.85 * r, fig.top + 2 * r]
    hairy = person.hair_style in ("short", "long")
    draw.ellipse(head, fill=HAIR if pose.view == "back" and hairy else SKIN)
    crown = [hx - 0.92 * r, fig.top - 0.08 * r, hx + 0.92 * r, fig.top + 1.5 * r]
    if hairy:
        draw.chord(crown, 180, 360, fill=HAIR)
        if fig.facing:
            draw.pieslice(head, 90 if fig.facing > 0 else 270, 270 if fig.facing > 0 else 90, fill=HAIR)
    if person.hair_style == "cap":
        draw.chord(crown, 180, 360, fill=HAT)
        brim = 0.9 * r if fig.facing else 0.5 * r
        x_brim = hx + fig.facing * 0.6 * r
        draw.rectangle([x_brim - brim, fig.top + 0.6 * r, x_brim + brim, fig.top + 0.75 * r], fill=HAT)


def _draw_carried(draw: ImageDraw.ImageDraw, person: Identity, pose: Pose, fig: Figure) -> None:
    """A backpack (on the back, straps from the front) or a shoulder bag at the hip with a strap."""
    bw, bh = person.bag_size[0] * fig.hp, person.bag_size[1] * fig.hp
    strap = 0.02 * fig.hp
    if person.carried == "backpack":
        y0 = fig.shoulder_y + 0.03 * fig.hp
        if pose.view == "back":
            box = [fig.cx - fig.sw * 0.75, y0, fig.cx + fig.sw * 0.75, y0 + 1.6 * bh]
            draw.rounded_rectangle(box, radius=bw * 0.2, fill=BAG)
        elif pose.view == "front":
            for s in (-1, 1):
                top, end = (fig.cx + s * fig.sw * 0.55, fig.shoulder_y), (fig.cx + s * fig.sw * 0.6, y0 + 0.9 * bh)
                _line(draw, top, end, strap, STRAP)
        else:
            back = fig.cx - fig.facing * fig.sw
            box = _box(back, y0, back - fig.facing * 0.7 * bw, y0 + 1.6 * bh)
            draw.rounded_rectangle(box, radius=bw * 0.15, fill=BAG)
            _line(draw, (fig.cx, fig.shoulder_y), (back, y0 + 0.3 * bh), strap, STRAP)
    elif person.carried in ("bag_left", "bag_right"):
        # Seen from the front a person's left side is on the image's right.
        side = (1 if person.carried == "bag_left" else -1) * (-1 if pose.view == "back" else 1)
        x = fig.cx + side * (fig.hw + 0.45 * bw) if fig.facing == 0 else fig.cx - fig.facing * 0.03 * fig.hp
        box = [x - bw / 2, fig.hip_y - bh * 0.6, x + bw / 2, fig.hip_y + bh * 0.4]
        draw.rounded_rectangle(box, radius=bw * 0.12, fill=BAG)
        shoulder_x = fig.cx - side * fig.sw * 0.7 if fig.facing == 0 else fig.cx
        _line(draw, (shoulder_x, fig.shoulder_y), (x, fig.hip_y - bh * 0.6), strap, STRAP)


def _box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    """A PIL box with its corners in increasing order."""
    return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
