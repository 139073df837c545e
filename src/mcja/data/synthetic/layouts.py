"""Plans of synthetic datasets in the published layouts: which image goes where, and the index files.

Each `plan_*` function decides identities, splits and cameras from one seeded generator, writes the
layout's text and .mat files, and returns the images still to be drawn (see `generate.py`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.io

SYSU_VISIBLE, SYSU_INFRARED = (1, 2, 4, 5), (3, 6)
SYSU_OUTDOOR = (4, 5, 6)
SYSU_PERM_ROWS = {1: 333, 2: 333, 3: 533, 4: 533, 5: 533, 6: 333}
LLCM_CAMERAS = tuple(range(1, 10))
LLCM_NO_TEST_NIR = 3  # the published test_nir/ has no cam3
NIR_CODE = 100        # LLCM's camera N of the nir sensors is camera code 100 + N
MAT_HEADER = b"MATLAB 5.0 MAT-file, written by mcja make-synthetic"


@dataclass(frozen=True)
class Job:
    """One image to draw: where it goes, whose it is, the camera code that fixes its look, its number."""

    path: str
    pid: int
    camera: int
    infrared: bool
    number: int
    view: str | None = None  # RegDB: the view the file name states; both images of a pair then share one pose


def plan_sysu(out: Path, ids: int, per_camera: int, rng: np.random.Generator) -> list[Job]:
    """SYSU-MM01: cam1..cam6/<pid:04d>/<n:04d>.jpg, exp/*_id.txt and exp/rand_perm_cam.mat."""
    pids = sorted(int(p) for p in rng.choice(np.arange(1, 334), size=ids, replace=False))
    order = [int(p) for p in rng.permutation(pids)]
    n_test = max(1, round(ids / 3))
    n_val = max(1, round((ids - n_test) / 4))
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    for name, members in (("train", train), ("val", val), ("test", test), ("available", pids)):
        _write(out / "exp" / f"{name}_id.txt", ",".join(str(p) for p in sorted(members)))
    cameras = {pid: _some(SYSU_VISIBLE, 0.7, rng) + _some(SYSU_INFRARED, 0.7, rng) for pid in pids}
    jobs = [
        Job(f"cam{cam}/{pid:04d}/{n:04d}.jpg", pid, cam, cam in SYSU_INFRARED, n)
        for pid in pids for cam in sorted(cameras[pid]) for n in range(1, per_camera + 1)
    ]
    counts = {(cam, pid): per_camera for pid in pids for cam in cameras[pid]}
    _write_mat(out / "exp" / "rand_perm_cam.mat", {"rand_perm_cam": rand_perm_cam(counts, rng)})
    return jobs


def rand_perm_cam(counts: dict[tuple[int, int], int], rng: np.random.Generator) -> np.ndarray:
    """The (6, 1) cell array of SYSU-MM01's evaluation code: per camera and pid, 10 permutations of 1..n (uint8)."""
    cells = np.empty((6, 1), dtype=object)
    for cam, rows in SYSU_PERM_ROWS.items():
        people = np.empty((rows, 1), dtype=object)
        for i in range(rows):
            people[i, 0] = np.zeros((0, 0))  # MATLAB's [] for a person this camera never saw
        for (c, pid), n in sorted(counts.items()):
            if c == cam:
                people[pid - 1, 0] = np.stack([rng.permutation(n) + 1 for _ in range(10)]).astype(np.uint8)
        cells[cam - 1, 0] = people
    return cells


def plan_regdb(
    out: Path, ids: int, per_camera: int, rng: np.random.Generator, female: Callable[[int], bool]
) -> list[Job]:
    """RegDB: Visible/<pid>/<gender>_<view>_v_<serial>_<pid>.bmp, Thermal/... and 10 splits under idx/.

    `female(pid)` gives the gender the file names state; a visible and a thermal image are taken together.
    """
    pids = list(range(1, ids + 1))
    serial = int(rng.integers(1000, 5000))
    files: dict[int, list[tuple[str, str]]] = {}
    jobs = []
    for pid in pids:
        gender = "female" if female(pid) else "male"
        files[pid] = []
        for n in range(per_camera):
            view = "front" if n < (per_camera + 1) // 2 else "back"
            visible = f"Visible/{pid}/{gender}_{view}_v_{serial:05d}_{pid}.bmp"
            thermal = f"Thermal/{pid}/{gender}_{view}_t_{serial:05d}_{pid}.bmp"
            files[pid].append((visible, thermal))
            jobs += [Job(visible, pid, 1, False, n, view), Job(thermal, pid, 2, True, n, view)]
            serial += 1
    for trial in range(1, 11):
        order = [int(p) for p in rng.permutation(pids)]
        for split, members in (("train", order[: ids // 2]), ("test", order[ids // 2:])):
            for k, modality in enumerate(("visible", "thermal")):
                lines = [f"{pair[k]} {label}" for label, pid in enumerate(sorted(members)) for pair in files[pid]]
                _write(out / "idx" / f"{split}_{modality}_{trial}.txt", "\n".join(lines) + "\n")
    return jobs


def plan_llcm(out: Path, ids: int, per_camera: int, rng: np.random.Generator) -> list[Job]:
    """LLCM: vis/ and nir/ with idx/train_{vis,nir}.txt, idx/test_id.txt, test_vis/camN/ and test_nir/camN/."""
    pids = sorted(int(p) for p in rng.choice(np.arange(1, 2 * ids + 1), size=ids, replace=False))
    test = sorted(int(p) for p in rng.choice(pids, size=max(1, round(ids / 3)), replace=False))
    train = [p for p in pids if p not in test]
    _write(out / "idx" / "test_id.txt", ",".join(str(p) for p in test))
    jobs, index = [], {"vis": [], "nir": []}
    for pid in pids:
        testing = pid in test
        nir_options = tuple(c for c in LLCM_CAMERAS if not (testing and c == LLCM_NO_TEST_NIR))
        for mod, cams in (("vis", _choose(LLCM_CAMERAS, 2, 4, rng)), ("nir", _choose(nir_options, 2, 3, rng))):
            for cam in cams:
                for n in range(per_camera):
                    serial, frame = int(rng.integers(100000, 999999)), int(rng.integers(1, 9999))
                    name = f"{pid:04d}_c{cam:02d}_s{serial}_f{frame}_{mod}.jpg"
                    folder = f"test_{mod}/cam{cam}/{pid:04d}" if testing else f"{mod}/{pid:04d}"
                    jobs.append(Job(f"{folder}/{name}", pid, cam + (NIR_CODE if mod == "nir" else 0), mod == "nir", n))
                    if not testing:
                        index[mod].append((pid, f"{folder}/{name}"))
    labels = {pid: i for i, pid in enumerate(train)}
    for mod, entries in index.items():
        _write(out / "idx" / f"train_{mod}.txt", "".join(f"{path} {labels[pid]}\n" for pid, path in sorted(entries)))
    return jobs


def _some(cameras: tuple[int, ...], p: float, rng: np.random.Generator) -> list[int]:
    """Each camera with probability p, but at least one: like the real data, not everyone is seen everywhere."""
    chosen = [c for c in cameras if rng.random() < p]
    return chosen or [int(rng.choice(cameras))]


def _choose(cameras: tuple[int, ...], lo: int, hi: int, rng: np.random.Generator) -> list[int]:
    """Between lo and hi distinct cameras, sorted."""
    k = min(int(rng.integers(lo, hi + 1)), len(cameras))
    return sorted(int(c) for c in rng.choice(cameras, size=k, replace=False))


def _write(path: Path, text: str) -> None:
    """Write a text file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _write_mat(path: Path, variables: dict[str, np.ndarray]) -> None:
    """scipy.io.savemat, with a fixed header text instead of the creation time, so equal seeds give equal bytes."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    data = bytearray(buffer.getvalue())
    data[:116] = MAT_HEADER.ljust(116)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
