"""A labelled archive folder of pattern images, for the index and serve tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from helpers.inference import pattern_image


def write_archive(root: Path, ids: tuple[int, ...] = (1, 2, 3), per_id: int = 2) -> list[Path]:
    """`root/<visible|infrared>/<pid>/<pid>_c<cam>_<n>.png`: visible on cameras 1-2, infrared on camera 3."""
    paths = []
    for pid in ids:
        for n in range(per_id):
            for modality, cam in (("visible", 1 + n % 2), ("infrared", 3)):
                path = root / modality / f"{pid:04d}" / f"{pid:04d}_c{cam}_{n}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pattern_image(pid, n + (50 if modality == "infrared" else 0))).save(path)
                paths.append(path)
    return paths
