"""Shared test settings (one torch thread per test process, a private image cache) and the session-wide fixtures
that several test folders read: synthetic and hand-made datasets, a tiny model, its checkpoint and a gallery.

Plain helper functions live in tests/helpers/ (imported as `helpers`); only fixtures live here.
"""

import os

# pytest-xdist runs one process per core; more threads per process would oversubscribe the cores
# (OpenMP threads spin-wait), which makes small CPU ops tens of times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MCJA_CACHE_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "mcja-test-cache"))

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from helpers.data import SYNTHETIC, SYNTHETIC_SIZE, write_llcm_tiny, write_regdb_tiny, write_sysu_tiny  # noqa: E402
from helpers.inference import save_checkpoint, tiny_model, write_gallery  # noqa: E402
from mcja.data.synthetic import make_synthetic  # noqa: E402
from mcja.models import MCJA  # noqa: E402

torch.set_num_threads(1)


def _fingerprint(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime) of every file under root."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory):
    """(layout, ids=..., seed=0, size=(64, 32), images_per_camera=...) -> a synthetic dataset written once per session.

    Sizes default to helpers.data.SYNTHETIC. The folder is shared and READ-ONLY: a test that changes a dataset
    copies it first (shutil.copytree); the session's end fails if any file of one was changed, added or removed.
    """
    made: dict[tuple, tuple[Path, dict]] = {}

    def get(layout: str, *, ids: int | None = None, seed: int = 0, size: tuple[int, int] = SYNTHETIC_SIZE,
            images_per_camera: int | None = None) -> Path:
        options = {**SYNTHETIC[layout], **{k: v for k, v in (("ids", ids), ("images_per_camera", images_per_camera))
                                           if v is not None}}
        key = (layout, seed, tuple(size), *sorted(options.items()))
        if key not in made:
            folder = tmp_path_factory.mktemp(f"{layout}-{options['ids']}x{options['images_per_camera']}-seed{seed}")
            root = make_synthetic(layout, folder / layout, seed=seed, size=tuple(size), **options)
            made[key] = root, _fingerprint(root)
        return made[key][0]

    yield get
    changed = [str(root) for root, before in made.values() if _fingerprint(root) != before]
    assert not changed, f"a test changed a shared synthetic dataset (copy it before changing it): {changed}"


@pytest.fixture(scope="session")
def sysu_root(synthetic_root) -> Path:
    """The synthetic SYSU-MM01 set the training tests share: 24 ids (16 train+val, 8 test), 64x32 images."""
    return synthetic_root("sysu", ids=24, images_per_camera=3)


@pytest.fixture(scope="session")
def tiny_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """layout -> a hand-made tiny dataset (read-only: copy it with `tiny_copy` before changing it)."""
    base = tmp_path_factory.mktemp("tiny")
    return {
        "sysu": write_sysu_tiny(base / "SYSU-MM01"),
        "regdb": write_regdb_tiny(base / "RegDB"),
        "llcm": write_llcm_tiny(base / "LLCM"),
    }


@pytest.fixture
def tiny_copy(tiny_roots: dict[str, Path], tmp_path: Path):
    """layout -> a fresh copy of that hand-made dataset that a test may break."""

    def copy(layout: str) -> Path:
        return Path(shutil.copytree(tiny_roots[layout], tmp_path / layout))

    return copy


@pytest.fixture(scope="session")
def model() -> MCJA:
    """A tiny random ResNet-18 MCJA in eval mode (helpers.inference.tiny_model)."""
    return tiny_model()


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, model: MCJA) -> Path:
    """Our checkpoint format with a config saying the model runs at 64x32."""
    return save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="session")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three identities, two images each, in `<pid>/` folders (shared read-only by the tests)."""
    root = tmp_path_factory.mktemp("gallery")
    write_gallery(root)
    return root
