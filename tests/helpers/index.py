"""A labelled archive folder of pattern images, for the index and serve tests; an index's rows and features read
straight from its files; the command a one-line error names; another process's writer lock."""

from __future__ import annotations

import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.inference import pattern_image
from helpers.processes import child_env


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


def rows_by_path(index_dir: Path) -> dict[str, tuple[int, int | None]]:
    """path -> (id, row) straight from the database file (plain sqlite3, not the code under test)."""
    with sqlite3.connect(index_dir / "index.sqlite") as db:
        return {p: (i, r) for p, i, r in db.execute("SELECT path, id, row FROM images")}


def features_of(index_dir: Path, dtype=np.float16, dim: int = 512) -> dict[str, np.ndarray]:
    """path -> stored feature, read from the raw file with numpy."""
    raw = np.fromfile(index_dir / f"features.{np.dtype(dtype).name}", dtype=dtype).reshape(-1, dim)
    return {p: raw[r] for p, (_, r) in rows_by_path(index_dir).items() if r is not None}


def hinted_command(message: str) -> list[str]:
    """The one `mcja ...` command an error message names between backticks, as arguments after `mcja`."""
    found = re.findall(r"`mcja ([^`]+)`", message)
    assert len(found) == 1, message
    return shlex.split(found[0])


def lock_holder(index_dir: Path, command: str = "mcja index update") -> subprocess.Popen:
    """Another process holding the index's writer lock (through mcja's lock code) until killed; returns once held."""
    code = ("import sys, time; from pathlib import Path; from mcja.utils.lock import acquire; "
            "acquire(Path(sys.argv[1]) / 'writer.lock', sys.argv[2]); print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(index_dir), command], env=child_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc
