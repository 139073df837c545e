"""The model's input size: the paper's default and the limits every size setting is checked against."""

from __future__ import annotations

from typing import Sequence

from mcja.errors import ConfigError

DEFAULT_IMAGE_SIZE = (384, 192)  # (height, width): the paper's input size, used wherever a checkpoint does not say
IMAGE_SIDE = (32, 4096)  # the backbone downsamples 32 times; above 4096 a side is a typo that would fill the disk


def checked_size(size: Sequence[int], what: str = "image size") -> tuple[int, int]:
    """(H, W) as ints; ConfigError naming `what` unless both sides are within IMAGE_SIDE."""
    lo, hi = IMAGE_SIDE
    if len(size) != 2 or not all(lo <= int(v) <= hi for v in size):
        raise ConfigError(f"{what}: expected (height, width), each {lo}..{hi}, got {list(size)}")
    return int(size[0]), int(size[1])
