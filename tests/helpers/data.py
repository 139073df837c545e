"""Dataset helpers: the synthetic sets' standard sizes, hand-made layouts with known counts, and counts of any
dataset on disk.

The `*_tiny` layouts are written here with plain PIL and text writes, not by the project's generator, so tests of
the readers and of `mcja data-info` check against counts fixed by hand below. The fixtures that write them once per
session (`synthetic_root`, `tiny_roots`, `tiny_copy`) live in tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

# Synthetic datasets (the project's generator) small enough to write in about a second each: the options
# tests/conftest.py's `synthetic_root(layout)` uses unless a test asks for others.
SYNTHETIC = {
    "sysu": {"ids": 9, "images_per_camera": 3},
    "regdb": {"ids": 6, "images_per_camera": 4},
    "llcm": {"ids": 6, "images_per_camera": 2},
}
SYNTHETIC_SIZE = (64, 32)


# ---- hand-made layouts: tiny solid-colour images, counts fixed by construction ----
def _image(path: Path, colour: tuple[int, int, int] = (90, 120, 150)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), colour).save(path)


def _text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# SYSU-MM01: (camera, pid) -> number of images. Train ids listed "3,1" (so pid 3 gets label 0), val "2".
SYSU_TINY_IMAGES = {
    (1, 1): 2, (3, 1): 1,
    (2, 2): 1, (6, 2): 2,
    (4, 3): 1, (5, 3): 1, (3, 3): 1,
    (1, 4): 2, (3, 4): 2, (6, 4): 1,   # test
    (2, 5): 1, (4, 5): 1, (6, 5): 1,   # test
    (1, 6): 1,                         # listed nowhere: ignored
}


def write_sysu_tiny(root: Path) -> Path:
    """SYSU-MM01 layout: cam1..cam6/<pid:04d>/<n:04d>.jpg and exp/*_id.txt."""
    for cam in range(1, 7):
        (root / f"cam{cam}").mkdir(parents=True, exist_ok=True)
    for (cam, pid), n in SYSU_TINY_IMAGES.items():
        for k in range(1, n + 1):
            _image(root / f"cam{cam}" / f"{pid:04d}" / f"{k:04d}.jpg")
    _text(root / "exp" / "train_id.txt", "3,1")
    _text(root / "exp" / "val_id.txt", "2\n")
    _text(root / "exp" / "test_id.txt", "4,5")
    _text(root / "exp" / "available_id.txt", "1,2,3,4,5")
    return root


# RegDB: pids 1..6 with 2 visible + 2 thermal images; trial 3 trains on 2, 5 and tests on 1, 3, 4, 6.
REGDB_TINY_SPLITS = {3: ([2, 5], [1, 3, 4, 6])}
REGDB_TINY_DEFAULT_SPLIT = ([1, 2, 3], [4, 5, 6])


def regdb_tiny_file(pid: int, k: int, modality: str) -> str:
    """Relative path of image k of person pid, as RegDB names them."""
    folder, letter = ("Visible", "v") if modality == "visible" else ("Thermal", "t")
    return f"{folder}/{pid}/male_front_{letter}_{100 * pid + k:05d}_{pid}.bmp"


def write_regdb_tiny(root: Path) -> Path:
    """RegDB layout: Visible/<pid>/*.bmp, Thermal/<pid>/*.bmp and idx/{train,test}_{visible,thermal}_{1..10}.txt."""
    for pid in range(1, 7):
        for k in range(2):
            for modality in ("visible", "thermal"):
                _image(root / regdb_tiny_file(pid, k, modality))
    for trial in range(1, 11):
        for split, pids in zip(("train", "test"), REGDB_TINY_SPLITS.get(trial, REGDB_TINY_DEFAULT_SPLIT)):
            for modality in ("visible", "thermal"):
                lines = [f"{regdb_tiny_file(pid, k, modality)} {label}" for label, pid in enumerate(pids) for k in range(2)]
                _text(root / "idx" / f"{split}_{modality}_{trial}.txt", "\n".join(lines) + "\n")
    return root


# LLCM: training files (pid, camera) per modality; test files (folder, camera, pid, count).
LLCM_TINY_TRAIN = {"vis": [(1, 2), (1, 5), (2, 1), (3, 9), (3, 9)], "nir": [(1, 3), (2, 4), (2, 4), (3, 6)]}
LLCM_TINY_TEST = [("test_vis", 1, 11, 2), ("test_vis", 3, 12, 1), ("test_vis", 9, 11, 1),
                  ("test_nir", 2, 11, 1), ("test_nir", 4, 12, 2),
                  ("test_vis", 5, 13, 1)]  # person 13 is not in test_id.txt: ignored


def write_llcm_tiny(root: Path) -> Path:
    """LLCM layout: vis/, nir/, idx/train_vis.txt, idx/train_nir.txt, idx/test_id.txt, test_vis/camN/, test_nir/camN/."""
    for mod, files in LLCM_TINY_TRAIN.items():
        lines = []
        for k, (pid, cam) in enumerate(files):
            rel = f"{mod}/{pid:04d}/{pid:04d}_c{cam:02d}_s{20000 + k}_f{k + 1}_{mod}.jpg"
            _image(root / rel)
            lines.append(f"{rel} {pid - 1}")
        _text(root / "idx" / f"train_{mod}.txt", "\n".join(lines) + "\n")
    for folder, cam, pid, n in LLCM_TINY_TEST:
        for k in range(n):
            _image(root / folder / f"cam{cam}" / f"{pid:04d}" / f"{pid:04d}_c{cam:02d}_s{k}_f{k}.jpg")
    _text(root / "idx" / "test_id.txt", "11,12")
    return root


# The six data-info counts of the hand-made layouts (RegDB: trial 3), worked out from the tables above.
TINY_COUNTS = {
    "sysu": {"train_ids": 3, "train_visible": 5, "train_infrared": 4, "test_ids": 2, "test_visible": 4, "test_infrared": 4},
    "regdb": {"train_ids": 2, "train_visible": 4, "train_infrared": 4, "test_ids": 4, "test_visible": 8, "test_infrared": 8},
    "llcm": {"train_ids": 3, "train_visible": 5, "train_infrared": 4, "test_ids": 2, "test_visible": 4, "test_infrared": 3},
}


# ---- expected counts of any dataset on disk, by globbing and splitting text (independent of the readers) ----
def _ids(path: Path) -> list[int]:
    return [int(t) for t in path.read_text().strip().split(",")]


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def _sysu_counts(root: Path) -> dict[str, int]:
    train = set(_ids(root / "exp/train_id.txt") + _ids(root / "exp/val_id.txt"))
    test = set(_ids(root / "exp/test_id.txt"))
    files = [(int(p.parent.parent.name[3:]), int(p.parent.name)) for p in root.glob("cam[1-6]/*/*.jpg")]

    def count(ids: set[int], cams: tuple[int, ...]) -> int:
        return sum(1 for cam, pid in files if pid in ids and cam in cams)

    return {"train_ids": len({pid for _, pid in files if pid in train}),
            "train_visible": count(train, (1, 2, 4, 5)), "train_infrared": count(train, (3, 6)),
            "test_ids": len({pid for _, pid in files if pid in test}),
            "test_visible": count(test, (1, 2, 4, 5)), "test_infrared": count(test, (3, 6))}


def _regdb_counts(root: Path, trial: int) -> dict[str, int]:
    def split(name: str) -> tuple[list[str], list[str]]:
        return _lines(root / f"idx/{name}_visible_{trial}.txt"), _lines(root / f"idx/{name}_thermal_{trial}.txt")

    def ids(lines: list[str]) -> int:
        return len({line.split()[0].split("/")[1] for line in lines})

    (train_v, train_t), (test_v, test_t) = split("train"), split("test")
    return {"train_ids": ids(train_v + train_t), "train_visible": len(train_v), "train_infrared": len(train_t),
            "test_ids": ids(test_v + test_t), "test_visible": len(test_v), "test_infrared": len(test_t)}


def _llcm_counts(root: Path) -> dict[str, int]:
    train_v, train_n = _lines(root / "idx/train_vis.txt"), _lines(root / "idx/train_nir.txt")
    test = {f"{pid:04d}" for pid in _ids(root / "idx/test_id.txt")}
    vis = [p for p in root.glob("test_vis/cam*/*/*.jpg") if p.parent.name in test]
    nir = [p for p in root.glob("test_nir/cam*/*/*.jpg") if p.parent.name in test]
    return {"train_ids": len({line.split("/")[1] for line in train_v + train_n}),
            "train_visible": len(train_v), "train_infrared": len(train_n),
            "test_ids": len({p.parent.name for p in vis + nir}), "test_visible": len(vis), "test_infrared": len(nir)}


def counts_on_disk(layout: str, root: Path, trial: int = 1) -> dict[str, int]:
    """The six data-info counts of a dataset, found by globbing files and splitting index lines (not the readers)."""
    if layout == "sysu":
        return _sysu_counts(root)
    return _regdb_counts(root, trial) if layout == "regdb" else _llcm_counts(root)
