"""`make_synthetic`: a small VI-ReID dataset in a published layout, drawn procedurally, byte-identical per seed.

The dataset is written to a temporary folder beside `out` and renamed into place when complete,
so an interrupted run never leaves half a dataset; asking again for the same dataset returns it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from tqdm import tqdm

from mcja.data.synthetic.identity import Identity, sample_identity
from mcja.data.synthetic.layouts import NIR_CODE, SYSU_OUTDOOR, Job, plan_llcm, plan_regdb, plan_sysu
from mcja.data.synthetic.render import render_person, sample_pose
from mcja.data.synthetic.scene import VIEWS, CameraStyle, camera_style
from mcja.errors import DatasetError
from mcja.utils.io import ensure_writable_dir

LAYOUTS = ("sysu", "regdb", "llcm")
DEFAULT_IDS = {"sysu": 48, "regdb": 40, "llcm": 48}
DEFAULT_IMAGES_PER_CAMERA = {"sysu": 6, "regdb": 10, "llcm": 3}
ID_RANGE = {"sysu": (3, 333), "regdb": (2, 9999), "llcm": (2, 4999)}
MARKER = ".mcja-synthetic.json"
GENERATOR_VERSION = 1
# Separate seed-sequence streams, so e.g. adding cameras does not change anyone's appearance.
_LAYOUT, _CAMERA, _PERSON, _POSE, _IMAGE = range(5)


def make_synthetic(
    layout: str,
    out: str | os.PathLike,
    ids: int | None = None,
    seed: int = 0,
    size: tuple[int, int] = (128, 64),
    images_per_camera: int | None = None,
    progress: bool = False,
) -> Path:
    """Write a synthetic dataset in `layout` (sysu, regdb, llcm) to `out` and return its path.

    `ids` and `images_per_camera` default per layout (sysu 48 x 6, regdb 40 x 10, llcm 48 x 3); `size` is (H, W).
    """
    settings = _settings(layout, ids, seed, size, images_per_camera)
    out = Path(out).expanduser().absolute()
    if _already_written(out, settings):
        return out
    ensure_writable_dir(out, "--out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a dataset folder should not be
        people = _people(settings["seed"])
        jobs = _plan(tmp, settings, people)
        _draw(tmp, jobs, settings, people, progress)
        (tmp / MARKER).write_text(json.dumps(settings, indent=1) + "\n")
        if out.exists():
            out.rmdir()  # _already_written allowed only an empty folder here
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _settings(layout: str, ids: int | None, seed: int, size: tuple[int, int], per_camera: int | None) -> dict:
    """The checked settings that decide every byte of the dataset."""
    if layout not in LAYOUTS:
        raise DatasetError(f"unknown synthetic layout '{layout}': expected one of {', '.join(LAYOUTS)}")
    ids = DEFAULT_IDS[layout] if ids is None else int(ids)
    per_camera = DEFAULT_IMAGES_PER_CAMERA[layout] if per_camera is None else int(per_camera)
    lo, hi = ID_RANGE[layout]
    if not lo <= ids <= hi:
        raise DatasetError(f"--ids must be between {lo} and {hi} for the {layout} layout; got {ids}")
    if not 1 <= per_camera <= 255:  # SYSU-MM01's rand_perm_cam.mat stores image numbers as uint8
        raise DatasetError(f"images per camera must be between 1 and 255; got {per_camera}")
    if int(seed) < 0:
        raise DatasetError(f"the seed must be a non-negative integer; got {seed}")
    if len(size) != 2 or min(size) < 16:
        raise DatasetError(f"image size must be HxW with both at least 16 pixels; got {size}")
    return {"layout": layout, "ids": ids, "seed": int(seed), "size": [int(size[0]), int(size[1])],
            "images_per_camera": per_camera, "version": GENERATOR_VERSION}


def _already_written(out: Path, settings: dict) -> bool:
    """True if `out` holds this very dataset; False if it is free; DatasetError if it holds something else."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise DatasetError(f"{out}: exists and is not a folder (expected a new or empty folder for the dataset)")
    marker = out / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return True
    if any(out.iterdir()):
        raise DatasetError(f"{out}: folder is not empty (expected a new or empty folder: remove it or pick another)")
    return False


def _plan(root: Path, settings: dict, people: Callable[[int], Identity]) -> list[Job]:
    """Write the layout's index files under `root` and list the images to draw."""
    layout, ids, per_camera = settings["layout"], settings["ids"], settings["images_per_camera"]
    rng = np.random.default_rng([settings["seed"], _LAYOUT])
    if layout == "sysu":
        return plan_sysu(root, ids, per_camera, rng)
    if layout == "regdb":
        return plan_regdb(root, ids, per_camera, rng, lambda pid: people(pid).female)
    return plan_llcm(root, ids, per_camera, rng)


def _draw(root: Path, jobs: list[Job], settings: dict, people: Callable[[int], Identity], progress: bool) -> None:
    """Render and save every image; each one's randomness depends only on the seed and the image itself."""
    seed, size = settings["seed"], tuple(settings["size"])
    styles: dict[int, CameraStyle] = {}
    for job in tqdm(jobs, desc=f"synthetic {settings['layout']}", unit="img", disable=not progress):
        if job.camera not in styles:
            styles[job.camera] = _camera(settings["layout"], job, seed)
        pose = None
        if job.view is not None:
            pose_rng = np.random.default_rng([seed, _POSE, job.pid, job.number])
            pose = sample_pose(pose_rng, np.array([v == job.view for v in VIEWS], dtype=float), (0.85, 1.0))
        rng = np.random.default_rng([seed, _IMAGE, job.pid, job.camera, job.number])
        pixels = render_person(people(job.pid), styles[job.camera], rng, size, pose)
        path = root / job.path
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, **({"quality": 92} if path.suffix == ".jpg" else {}))


def _people(seed: int) -> Callable[[int], Identity]:
    """pid -> that person of the dataset drawn with `seed`, each drawn once."""
    drawn: dict[int, Identity] = {}

    def person(pid: int) -> Identity:
        if pid not in drawn:
            drawn[pid] = sample_identity(pid, np.random.default_rng([seed, _PERSON, pid]))
        return drawn[pid]

    return person


def _camera(layout: str, job: Job, seed: int) -> CameraStyle:
    """A camera's look: SYSU-MM01 cams 4-6 are outdoor; LLCM's visible cameras are dim (low light)."""
    code = job.camera
    outdoor = code in SYSU_OUTDOOR if layout == "sysu" else layout == "llcm" and code % 2 == 0
    style = camera_style(np.random.default_rng([seed, _CAMERA, code]), infrared=job.infrared, outdoor=outdoor)
    if layout == "llcm" and code < NIR_CODE:
        style = dataclasses.replace(style, light=style.light * 0.55)
    return style
