"""People's own data: image folders sorted by modality and person, or a CSV list of images.

Layouts the `folder` reader accepts (one "source" is either of the first two):
- folders: <root>/<modality>/<pid>/*.{jpg,jpeg,png,bmp}; modality folder names (any case):
  visible | vis | rgb for visible, infrared | ir | nir | thermal for infrared;
- CSV: rows `path,pid,camera,modality` (header row optional; camera may be empty; modality 0/1 or
  one of the words above; paths relative to the CSV's folder). The root may be the CSV itself, or
  a folder holding exactly one *.csv and no modality folders;
- splits: when the root holds `train` and `test` (each a folder in one of the layouts above, or
  train.csv / test.csv), those are the training and test data. Otherwise everything is training
  data and the test lists are empty.
Person ids are the given numbers when every id is a number; otherwise the names, sorted, are
numbered 1..M and meta["pid_names"] maps the numbers back. Camera: the CSV's, else a `c<N>` /
`cam<N>` token in the file name (e.g. 0001_c3_s1.jpg), else 1 for visible and 2 for infrared.
Training labels are the training person ids in increasing order, 0..N-1.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from mcja.data.layout import (
    IMAGE_EXTENSIONS,
    label_by_sorted_pid,
    list_images,
    read_text_file,
    require_root,
    require_samples,
)
from mcja.data.records import INFRARED, VISIBLE, Sample, VIDataset
from mcja.errors import DatasetError

MODALITY_NAMES = {
    "0": VISIBLE, "visible": VISIBLE, "vis": VISIBLE, "rgb": VISIBLE,
    "1": INFRARED, "infrared": INFRARED, "ir": INFRARED, "nir": INFRARED, "thermal": INFRARED,
}
LAYOUT = "<root>/<visible|infrared>/<pid>/*.jpg folders, a CSV 'path,pid,camera,modality', or train/ and test/ in either"
_CAMERA_TOKEN = re.compile(r"(?:^|[^a-z])c(?:am)?(\d+)(?!\d)", re.IGNORECASE)

# One image before person ids are numbered: (path, person name, camera or None, modality).
Row = tuple[str, str, int | None, int]


def read_folder(root: str | os.PathLike) -> VIDataset:
    """Read people's own data from an image-folder tree or a CSV list (see the module docstring)."""
    path = Path(root).expanduser().absolute()
    if path.suffix.lower() == ".csv" and path.is_file():
        train_rows, test_rows = _read_csv(path), []
    else:
        path = require_root(path, LAYOUT)
        splits = [_split_source(path, name) for name in ("train", "test")]
        if all(splits):
            train_rows, test_rows = _read_source(splits[0]), _read_source(splits[1])
        else:
            train_rows, test_rows = _read_source(path), []
    pids = _number_pids([row[1] for row in train_rows + test_rows])
    train = label_by_sorted_pid(require_samples(_samples(train_rows, pids), path, "training images"))
    test = _samples(test_rows, pids)
    meta = {} if all(name.isdigit() for name in pids) else {"pid_names": {n: name for name, n in pids.items()}}
    return VIDataset(
        name="folder",
        root=str(path),
        train=train,
        test_visible=[s for s in test if s.modality == VISIBLE],
        test_infrared=[s for s in test if s.modality == INFRARED],
        meta=meta,
    )


def camera_from_name(path: str, modality: int) -> int:
    """The `c<N>`/`cam<N>` token of a file name, else 1 for visible and 2 for infrared."""
    token = _CAMERA_TOKEN.search(Path(path).stem)
    if token:
        return int(token.group(1))
    return 1 if modality == VISIBLE else 2


def _split_source(root: Path, name: str) -> Path | None:
    """root/name as a folder, or root/name.csv, if either exists."""
    for candidate in (root / name, root / f"{name}.csv"):
        if candidate.exists():
            return candidate
    return None


def _read_source(source: Path) -> list[Row]:
    """Rows of one source: a CSV file, a folder of modality folders, or a folder with one CSV."""
    if source.is_file():
        return _read_csv(source)
    modality_dirs = [d for d in sorted(source.iterdir()) if d.is_dir() and d.name.lower() in MODALITY_NAMES]
    if modality_dirs:
        return [
            (str(image), person.name, None, MODALITY_NAMES[mdir.name.lower()])
            for mdir in modality_dirs
            for person in sorted(p for p in mdir.iterdir() if p.is_dir())
            for image in list_images(person, IMAGE_EXTENSIONS)
        ]
    lists = sorted(source.glob("*.csv"))
    if len(lists) == 1:
        return _read_csv(lists[0])
    raise DatasetError(f"{source}: expected {LAYOUT}")


def _read_csv(path: Path) -> list[Row]:
    """Rows of a CSV list `path,pid,camera,modality`; the first row is a header when its modality is not one."""
    rows: list[Row] = []
    text = read_text_file(path, "CSV list 'path,pid,camera,modality'")
    for number, fields in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        fields = [x.strip() for x in fields]
        if not any(fields):
            continue
        if number == 1 and len(fields) == 4 and fields[3].lower() not in MODALITY_NAMES:
            continue
        rows.append(_parse_row(fields, path, number))
    return rows


def _parse_row(fields: list[str], path: Path, number: int) -> Row:
    """One CSV row checked: four fields, an existing image, an integer or empty camera, a known modality."""
    where = f"{path} line {number}"
    if len(fields) != 4 or not fields[0] or not fields[1]:
        raise DatasetError(f"{where}: expected 'path,pid,camera,modality', got {','.join(fields)!r}")
    image, pid, camera, modality = fields
    if not (camera == "" or camera.isdigit()) or modality.lower() not in MODALITY_NAMES:
        raise DatasetError(f"{where}: expected an integer camera (or empty) and modality 0/1/visible/infrared, "
                           f"got {camera!r}, {modality!r}")
    full = path.parent / image
    if not full.is_file():
        raise DatasetError(f"{where}: image not found: {full}")
    return str(full), pid, int(camera) if camera else None, MODALITY_NAMES[modality.lower()]


def _number_pids(names: list[str]) -> dict[str, int]:
    """Person names to integer ids: the numbers themselves when all are numbers, else 1..M in sorted order."""
    unique = sorted(set(names))
    if all(name.isdigit() for name in unique):
        return {name: int(name) for name in unique}
    return {name: i for i, name in enumerate(unique, start=1)}


def _samples(rows: list[Row], pids: dict[str, int]) -> list[Sample]:
    """Records from rows, with numbered person ids and the camera rule of the module docstring."""
    return [
        Sample(image, pids[pid], camera if camera is not None else camera_from_name(image, modality), modality)
        for image, pid, camera, modality in rows
    ]
