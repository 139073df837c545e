"""Fixtures for the index tests: the inference tests' tiny ResNet-18 checkpoint and pattern images (loaded from
tests/inference/conftest.py, not copied), plus a labelled archive folder written here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from PIL import Image

from mcja.models import checkpoint_payload

_spec = importlib.util.spec_from_file_location("_inference_fixtures", Path(__file__).parents[1] / "inference" / "conftest.py")
_inference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_inference)
model, checkpoint, helpers = _inference.model, _inference.checkpoint, _inference.helpers


@pytest.fixture(scope="session")
def other_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another tiny model (other weights, same architecture and size)."""
    path = tmp_path_factory.mktemp("ckpt2") / "other.pt"
    torch.save(checkpoint_payload(_inference.tiny_model(seed=1), config={"data": {"image_size": list(_inference.SIZE)}}),
               path)
    return path


def write_archive(root: Path, ids: tuple[int, ...] = (1, 2, 3), per_id: int = 2) -> list[Path]:
    """`root/<visible|infrared>/<pid>/<pid>_c<cam>_<n>.png`: visible on cameras 1-2, infrared on camera 3."""
    paths = []
    for pid in ids:
        for n in range(per_id):
            for modality, cam in (("visible", 1 + n % 2), ("infrared", 3)):
                path = root / modality / f"{pid:04d}" / f"{pid:04d}_c{cam}_{n}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(_inference.pattern_image(pid, n + (50 if modality == "infrared" else 0))).save(path)
                paths.append(path)
    return paths


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    """A fresh labelled archive of 12 images (3 ids x 2 images x 2 modalities)."""
    write_archive(tmp_path / "archive")
    return tmp_path / "archive"


@pytest.fixture(scope="session")
def archive_writer():
    """`write_archive` above, for tests that need a bigger archive (conftest is not importable by name)."""
    return write_archive
