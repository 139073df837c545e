"""`mcja export`: an ONNX graph that matches PyTorch (onnxruntime, CPU), dynamic batch, atomic writes, errors."""

import sys

import numpy as np
import pytest
import torch

from helpers.inference import MEAN, STD, pattern_image, reference_features
from mcja.cli import main
from mcja.errors import MCJAError
from mcja.inference import export as export_module
from mcja.inference import export_onnx


def _onnxruntime():
    pytest.importorskip("onnx", reason="ONNX export needs the onnx extra (pip install 'mcja[onnx]'); CI installs it")
    return pytest.importorskip("onnxruntime", reason="parity needs onnxruntime from the onnx extra; CI installs it")


def test_dynamic_batch_export_matches_pytorch(model, checkpoint, tmp_path, capsys):
    ort = _onnxruntime()
    path = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(path), "--dynamic-batch"]) == 0
    out = capsys.readouterr().out
    assert "max abs difference" in out and "[B, 3, 64, 32]" in out
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "images" and inp.shape[1:] == [3, 64, 32] and outp.shape[1] == 512
    for batch in (1, 5):  # neither is the traced batch (2)
        images = np.stack([pattern_image(pid, batch) for pid in range(batch)])
        x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - MEAN) / STD
        got = session.run(None, {"images": x.numpy()})[0]
        expected = reference_features(model, images).numpy()  # un-normalised BN-neck output
        assert got.shape == (batch, 512) and np.abs(got - expected).max() < 1e-4


def test_fixed_batch_export_with_size_and_opset(checkpoint, tmp_path):
    ort = _onnxruntime()
    import onnx

    path = tmp_path / "fixed.onnx"
    report = export_onnx(checkpoint, path, image_size=(96, 48), opset=13)
    assert report["parity"]["status"] == "checked" and report["parity"]["max_abs_diff"] < 1e-4
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == 13
    notes = {p.key: p.value for p in proto.metadata_props}
    assert "96x48" in notes["mcja.input"] and "0.485" in notes["mcja.input"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 96, 48]


def test_failed_parity_writes_nothing(checkpoint, tmp_path, monkeypatch):
    _onnxruntime()
    monkeypatch.setattr(export_module, "check_parity", lambda *a, **k: {"status": "checked", "batch": 1, "max_abs_diff": 0.5})
    path = tmp_path / "bad.onnx"
    with pytest.raises(MCJAError, match="differs from PyTorch by 5.00e-01"):
        export_onnx(checkpoint, path)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one is left


def test_missing_extra_is_named(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail as if it were not installed
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'mcja[onnx]'" in err


def test_export_errors(checkpoint, tmp_path, capsys):
    pytest.importorskip("onnx", reason="the onnx extra is checked before the checkpoint")
    junk = tmp_path / "junk.pt"
    torch.save({"hello": 1}, junk)
    cases = [
        (["--checkpoint", str(junk)], "not a checkpoint"),
        (["--checkpoint", str(tmp_path / "absent.pt")], "absent.pt: no such file"),
        (["--checkpoint", str(checkpoint), "--opset", "9"], "--opset 9"),
    ]
    for args, message in cases:
        assert main(["export", *args, "--onnx", str(tmp_path / "m.onnx")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "m.onnx").exists()
