"""Which images to embed, with person ids, cameras and modalities when they are known.

Sources: an image folder (searched recursively), a list file, or one side of a dataset's test split.
Ids in a folder: the image's folder when it is a number (`DIR/<pid>/*.jpg`), else a leading number in the
file name (`0001_c1_s1.jpg`); cameras: a `c<N>`/`cam<N>` token in the file name. A label is kept only
when every image has one. Dataset splits: query = the infrared/thermal test images, gallery = the
visible ones (SYSU-MM01, RegDB, LLCM and folder datasets alike), train = the training images.

`image_labels` (what an index stores per image) reads the labels every layout mcja reads puts in a path, by the
readers' own rules (folders below the given root, nearest first):
- camera: a `c<N>`/`cam<N>` token in the file name (LLCM `_c06_`), else a `camN/` folder (SYSU-MM01, LLCM
  test), else, in a modality folder, the folder layout's 1 for visible and 2 for infrared (RegDB's cameras);
- modality: a modality folder (`visible|vis|rgb`, `infrared|ir|nir|thermal`: the folder layout, RegDB's
  `Visible/` `Thermal/`, LLCM's `vis/` `nir/`), else the folder holding `camN/`: LLCM's `test_vis/` or
  `test_nir/`, or a SYSU-MM01 root (cam1..cam6 and exp/), whose cameras 3 and 6 are the infrared ones.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from mcja.data.folder import MODALITY_NAMES, camera_from_name
from mcja.data.layout import list_images, read_text_file
from mcja.data.llcm import CAMERA_FOLDER, TEST_FOLDERS
from mcja.data.records import INFRARED, VISIBLE, Sample, columns
from mcja.data.registry import DATASET_NAMES, load_dataset
from mcja.data.sysu import camera_modality, is_sysu_root
from mcja.errors import ConfigError, DatasetError

SPLITS = ("query", "gallery", "train")
_LEADING_ID = re.compile(r"^(\d+)[_-]")


@dataclass
class ImageSet:
    """Image paths and, when known for every image, person ids, cameras and modalities."""

    paths: list[str]
    pids: list[int] | None = None
    cameras: list[int] | None = None
    modalities: list[int] | None = None

    def subset(self, kept: Sequence[int]) -> "ImageSet":
        """The images at indices `kept`, labels included."""
        pick = lambda values: None if values is None else [values[i] for i in kept]  # noqa: E731
        return ImageSet(pick(self.paths), pick(self.pids), pick(self.cameras), pick(self.modalities))

    def arrays(self) -> dict[str, np.ndarray]:
        """`paths` (unicode, loads without pickle) and the known labels as int64 arrays, for an npz file."""
        out = {"paths": np.array(self.paths, dtype=str)}
        for name in ("pids", "cameras", "modalities"):
            values = getattr(self, name)
            if values is not None:
                out[name] = np.array(values, dtype=np.int64)
        return out


def pid_from_path(path: str | os.PathLike, root: str | os.PathLike | None = None) -> int | None:
    """Person id of an image: its folder's name when numeric (and not `root` itself), else a leading number
    of the file name followed by _ or - (`0001_c1.jpg`); None when neither."""
    path = Path(path)
    if path.parent.name.isdigit() and (root is None or path.parent != Path(root)):
        return int(path.parent.name)
    m = _LEADING_ID.match(path.name)
    return int(m.group(1)) if m else None


def camera_token(path: str | os.PathLike) -> int | None:
    """The camera of a `c<N>` / `cam<N>` token in the file name, None without one."""
    # camera_from_name falls back to a per-modality default, so equal answers for both modalities mean a token.
    visible, infrared = camera_from_name(str(path), VISIBLE), camera_from_name(str(path), INFRARED)
    return visible if visible == infrared else None


def modality_from_path(path: str | os.PathLike, root: str | os.PathLike | None = None) -> int | None:
    """The modality a folder of the image's path names (visible | vis | rgb, infrared | ir | nir | thermal, any
    case; the nearest such folder below `root` wins), None without one."""
    for folder in _folders(Path(path), root):
        word = folder.name.lower()
        if word in MODALITY_NAMES and not word.isdigit():
            return MODALITY_NAMES[word]
    return None


def _folders(path: Path, root: str | os.PathLike | None) -> list[Path]:
    """The folders of an image's path, nearest first: those below `root` when it lies there, else all."""
    parents = list(path.parents)
    if root is not None and path.is_relative_to(root):
        parents = parents[: len(path.relative_to(root).parents) - 1]
    return parents


_sysu_root = lru_cache(maxsize=1024)(is_sysu_root)  # asked once per camN folder, not once per image


def image_labels(path: str | os.PathLike, root: str | os.PathLike | None = None
                 ) -> tuple[int | None, int | None, int | None]:
    """(person id, camera, modality) of one image as its folders and name tell them in any layout mcja reads (see
    the module docstring), each None when they do not."""
    path = Path(path)
    cam_dir = next((f for f in _folders(path, root) if CAMERA_FOLDER.fullmatch(f.name)), None)
    camera, modality = camera_token(path), modality_from_path(path, root)
    if cam_dir is not None:
        number = int(CAMERA_FOLDER.fullmatch(cam_dir.name).group(1))  # type: ignore[union-attr]
        camera = number if camera is None else camera
        if modality is None and cam_dir.parent.name in TEST_FOLDERS:  # LLCM test_vis/camN/, test_nir/camN/
            modality = TEST_FOLDERS[cam_dir.parent.name]
        elif modality is None and _sysu_root(cam_dir.parent):  # SYSU-MM01 camN/
            modality = camera_modality(number)
    if camera is None and modality is not None:
        camera = camera_from_name(str(path), modality)  # the folder layout's camera of its modality
    return pid_from_path(path, root), camera, modality


def find_images(root: str | os.PathLike, exclude: str | os.PathLike | None = None) -> list[str]:
    """Image files below `root` (recursively, sorted per folder), leaving out the folder `exclude`."""
    top = Path(root).expanduser().absolute()
    if not top.is_dir():
        raise DatasetError(f"{top}: image folder not found" if not top.exists() else f"{top}: not a folder")
    skip = Path(exclude).expanduser().absolute() if exclude is not None else None
    found: list[str] = []
    for folder, subfolders, _ in os.walk(top):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and Path(folder, d) != skip)
        found.extend(str(p) for p in list_images(Path(folder)))
    if not found:
        raise DatasetError(f"{top}: no images found (.jpg, .jpeg, .png, .bmp, searched recursively)")
    return found


def folder_images(root: str | os.PathLike, exclude: str | os.PathLike | None = None) -> ImageSet:
    """The images below `root` with the ids and cameras their folders or names give (see module docstring)."""
    paths = find_images(root, exclude)
    top = Path(root).expanduser().absolute()
    pids = [pid_from_path(p, top) for p in paths]
    cameras = [camera_token(p) for p in paths]
    return ImageSet(paths, _all_or_none(pids), _all_or_none(cameras))


def list_file_images(path: str | os.PathLike) -> ImageSet:
    """A `.csv` list `path,pid,camera,modality` (the folder reader's format), or one image path per line
    (relative paths are taken from the list's folder)."""
    file = Path(path).expanduser().absolute()
    if not file.is_file():
        raise DatasetError(f"{file}: image list not found")
    if file.suffix.lower() == ".csv":
        return sample_images(load_dataset("folder", file).train)
    lines = [line.strip() for line in read_text_file(file, "image list (one image path per line)").splitlines()]
    paths = [str(file.parent / line) for line in lines if line and not line.startswith("#")]
    if not paths:
        raise DatasetError(f"{file}: the image list is empty (expected one image path per line)")
    return ImageSet(paths)


def dataset_images(name: str, root: str | os.PathLike, split: str, trial: int = 1) -> ImageSet:
    """One side of a dataset: query = infrared/thermal test images, gallery = visible ones, or train."""
    if split not in SPLITS:
        raise ConfigError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    data = load_dataset(name, root, trial=trial)
    samples = {"query": data.test_infrared, "gallery": data.test_visible, "train": data.train}[split]
    if not samples:
        raise DatasetError(f"{data.root}: the {name} dataset has no {split} images")
    return sample_images(samples)


def image_source(images: str | None = None, list_file: str | None = None, dataset: str | None = None,
                 root: str | None = None, split: str = "query", trial: int = 1) -> ImageSet:
    """The ImageSet of exactly one source: a folder, a list file, or a dataset's split."""
    given = [name for name, value in (("images", images), ("list", list_file), ("dataset", dataset)) if value]
    if len(given) != 1:
        raise ConfigError(f"give exactly one image source (--images, --list or --dataset), got {given or 'none'}")
    if root and not dataset:
        raise ConfigError("--root names a dataset's folder: use it with --dataset (or give the folder to --images)")
    if images:
        return folder_images(images)
    if list_file:
        return list_file_images(list_file)
    if dataset not in DATASET_NAMES:
        raise ConfigError(f"--dataset {dataset!r}: expected one of {', '.join(DATASET_NAMES)}")
    if not root:
        raise ConfigError(f"--dataset {dataset} needs --root, the dataset's folder")
    return dataset_images(dataset, root, split, trial)


def sample_images(samples: Sequence[Sample]) -> ImageSet:
    """An ImageSet of dataset records: all labels known."""
    cols = columns(samples)
    return ImageSet([str(p) for p in cols["paths"]], cols["pids"].tolist(), cols["cameras"].tolist(),
                    cols["modalities"].tolist())


def _all_or_none(values: list[int | None]) -> list[int] | None:
    """`values` when every one is known, else None (a label column is all or nothing)."""
    return None if any(v is None for v in values) else values  # type: ignore[return-value]
