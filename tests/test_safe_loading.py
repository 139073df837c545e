"""No file a user hands over can run code: a pickle that would create a marker file, fed to every entry point that
reads a checkpoint (CLI and Python), creates nothing and fails with one line (exit 2 on the command line)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from helpers.cli import run_cli
from helpers.inference import save_checkpoint
from mcja import api
from mcja.errors import CheckpointError
from mcja.inference import FeatureExtractor
from mcja.models import MCJA, checkpoint_payload, load_model, reader


class _Payload:
    """Unpickling this calls os.system: the attack a downloaded .pth can carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path]:
    """(a checkpoint-looking file whose pickle would run a command, the marker that command creates)."""
    marker = tmp_path / "PWNED"
    path = tmp_path / "model_best.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": _Payload(marker)}, path)
    return path, marker


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """A folder with one readable image, and `q.png` beside it, so the verbs get as far as the checkpoint."""
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (32, 64), (90, 30, 200)).save(folder / "0001_c1_0.png")
    Image.new("RGB", (32, 64), (90, 30, 200)).save(tmp_path / "q.png")
    return folder


@pytest.fixture
def evil_run(tmp_path: Path, evil: tuple[Path, Path]) -> tuple[Path, Path]:
    """A run folder whose last.pt is the payload (what `--resume` reads)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(evil[0].read_bytes())
    return run, evil[1]


def _assert_refused(code: int, err: str, marker: Path) -> None:
    assert not marker.exists(), "the pickle ran"
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "not a safe checkpoint" in lines[0] and "os" in lines[0], err
    assert "weights_only" not in err  # never torch's advice to load it unsafely


def test_the_payload_really_runs_when_unpickled(evil):
    """The fixture is a real attack: an unsafe load creates the marker (so the tests below mean something)."""
    path, marker = evil
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("verb", ["test", "extract", "search", "export", "model-info", "resume"])
def test_every_verb_refuses_the_payload(verb, evil, evil_run, images, tmp_path, capsys):
    path, marker = evil
    argv = {
        "test": ["test", "--checkpoint", str(path), "--dataset", "sysu", "--root", str(tmp_path / "nowhere")],
        "extract": ["extract", "--checkpoint", str(path), "--images", str(images), "--out", str(tmp_path / "f.npz")],
        "search": ["search", "--checkpoint", str(path), "--query", str(tmp_path / "q.png"), "--gallery", str(images),
                   "--out", str(tmp_path / "res")],
        "export": ["export", "--checkpoint", str(path), "--onnx", str(tmp_path / "m.onnx")],
        "model-info": ["model-info", "--checkpoint", str(path)],
        "resume": ["train", "--resume", str(evil_run[0])],
    }[verb]
    code, _, err = run_cli(capsys, *argv)
    _assert_refused(code, err, marker)
    assert not evil_run[1].exists()


def test_training_refuses_a_payload_as_imagenet_weights(evil, synthetic_root, tmp_path, capsys):
    path, marker = evil
    root = synthetic_root("sysu", ids=6, images_per_camera=1)
    code, _, err = run_cli(capsys, "train", "--config", "demo", "--quiet", f"data.root={root}", f"model.pretrained={path}",
                           f"output_dir={tmp_path / 'runs'}", f"data.cache_dir={tmp_path / 'cache'}", "data.p_size=2",
                           "data.k_size=2", "data.image_size=[64,32]")
    _assert_refused(code, err, marker)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no half-made run folder


@pytest.mark.parametrize("entry", ["load_model", "FeatureExtractor", "MCJA(pretrained)", "api.test", "api.resume",
                                   "api.extract", "api.search", "api.export"])
def test_every_python_entry_point_refuses_the_payload(entry, evil, evil_run, images, tmp_path):
    path, marker = evil
    calls = {
        "load_model": lambda: load_model(path),
        "FeatureExtractor": lambda: FeatureExtractor(path),
        "MCJA(pretrained)": lambda: MCJA(4, depth=18, pretrained=str(path)),
        "api.test": lambda: api.test(path, "sysu", tmp_path),
        "api.resume": lambda: api.resume(evil_run[0], progress=False),
        "api.extract": lambda: api.extract(path, tmp_path / "f.npz", images=str(images)),
        "api.search": lambda: api.search(path, [tmp_path / "q.png"], images, tmp_path / "res"),
        "api.export": lambda: api.export(path, tmp_path / "m.onnx"),
    }
    with pytest.raises(CheckpointError, match="not a safe checkpoint"):
        calls[entry]()
    assert not marker.exists() and not evil_run[1].exists()


def test_legacy_format_checkpoints_load_everywhere(tmp_path):
    """Files written with torch's pre-1.6 (non-zip) format are read too, by the model loader and the extractor."""
    torch.manual_seed(0)
    model = MCJA(4, depth=18, pretrained=None).eval()
    path = tmp_path / "legacy.pt"
    torch.save(checkpoint_payload(model, config={"data": {"image_size": [64, 32]}}), path,
               _use_new_zipfile_serialization=False)
    loaded = load_model(path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    extractor = FeatureExtractor(path, device="cpu")
    assert extractor.image_size == (64, 32)
    x = torch.randint(0, 256, (2, 64, 32, 3), dtype=torch.uint8).numpy()
    assert extractor(x).shape == (2, model.feature_dim)


def test_a_command_reads_its_checkpoint_once(tmp_path, monkeypatch):
    """FeatureExtractor (extract, search) and export take the model and its image size from one read."""
    model = MCJA(4, depth=18, pretrained=None)
    path = save_checkpoint(model, tmp_path / "m.pt")
    reads: list[Path] = []
    original = reader.read_torch_file
    monkeypatch.setattr(reader, "read_torch_file", lambda p, *a, **k: reads.append(Path(p)) or original(p, *a, **k))
    extractor = FeatureExtractor(path, device="cpu")
    assert reads == [path] and extractor.image_size == (64, 32)


def test_unreadable_files_get_one_line_without_unsafe_advice(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "notes.txt")
    assert str(tmp_path / "notes.txt") in str(err.value) and "\n" not in str(err.value)
    assert "weights_only" not in str(err.value)
