"""The layout checks every dataset reader shares: roots, index files, id lists, image folders.

Readers list files and parse index files but never open images, so reading even SYSU-MM01 takes
well under a second; `mcja data-info --verify` is the way to decode every image once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from mcja.data.records import Sample
from mcja.errors import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def require_root(root: str | os.PathLike, layout: str) -> Path:
    """The absolute dataset root; DatasetError naming it and the expected layout when it is not a folder."""
    path = Path(root).expanduser().absolute()
    if not path.exists():
        raise DatasetError(f"{path}: dataset root not found (expected {layout})")
    if not path.is_dir():
        raise DatasetError(f"{path}: dataset root is not a folder (expected {layout})")
    return path


def require_file(path: Path, what: str) -> Path:
    """`path` if it is a file, else DatasetError saying what the file should have been."""
    if not path.is_file():
        raise DatasetError(f"{path}: {what} not found")
    return path


def require_dir(path: Path, what: str) -> Path:
    """`path` if it is a folder, else DatasetError saying what the folder should have held."""
    if not path.is_dir():
        raise DatasetError(f"{path}: folder not found (expected {what})")
    return path


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of `path` (a leading BOM dropped); DatasetError naming it and `what` it should hold when it
    is missing, unreadable or not UTF-8 (e.g. saved in a legacy code page)."""
    require_file(path, what)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
                           f"expected {what}") from None
    except OSError as err:
        raise DatasetError(f"{path}: cannot read {what} ({err.strerror or err})") from None


def read_id_list(path: Path) -> list[int]:
    """Person ids from a one-line comma-separated id file (SYSU-MM01 exp/*_id.txt, LLCM idx/test_id.txt)."""
    text = read_text_file(path, "id file (one comma-separated line of person ids)").strip()
    try:
        ids = [int(tok) for tok in text.replace("\n", ",").split(",") if tok.strip()]
    except ValueError:
        raise DatasetError(f"{path}: expected one line of comma-separated integer ids, got {text[:40]!r}") from None
    if not ids:
        raise DatasetError(f"{path}: id file is empty (expected comma-separated person ids)")
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{path}: an id is listed twice")
    return ids


def read_index(path: Path, root: Path) -> Iterator[tuple[int, Path, int]]:
    """(line number, image path, label) per line '<path relative to root> <label>' of an index file.

    Every image must exist; blank lines are skipped.
    """
    lines = read_text_file(path, "index file ('<relative image path> <label>' per line)").splitlines()
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise DatasetError(f"{path} line {number}: expected '<relative image path> <label>', got {line.strip()!r}")
        image = root / fields[0]
        if not image.is_file():
            raise DatasetError(f"{path} line {number}: image not found: {image}")
        yield number, image, int(fields[1])


def folder_pid(image: Path, where: str) -> int:
    """The person id that names an image's folder (`.../<pid>/<file>`); DatasetError if it is not a number."""
    name = image.parent.name
    if not name.isdigit():
        raise DatasetError(f"{where}: expected the image's folder to be a numeric person id: {image}")
    return int(name)


def list_images(folder: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """The image files directly inside `folder`, sorted by name (empty if it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in extensions and p.is_file())


def label_by_sorted_pid(samples: list[Sample]) -> list[Sample]:
    """Training records labelled 0..N-1 in increasing person-id order."""
    labels = {pid: i for i, pid in enumerate(sorted({s.pid for s in samples}))}
    return [Sample(s.path, s.pid, s.camera, s.modality, labels[s.pid]) for s in samples]


def require_samples(samples: list[Sample], where: Path, what: str) -> list[Sample]:
    """`samples` unless empty; an empty split means the layout is wrong, so say where it was looked for."""
    if not samples:
        raise DatasetError(f"{where}: no {what} found")
    return samples
