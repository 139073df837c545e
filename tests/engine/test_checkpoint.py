"""The selected model of a run: best.pt once an evaluation kept one, else last.pt."""

from __future__ import annotations

from mcja.engine.checkpoint import selected_checkpoint


def test_selected_checkpoint_prefers_best_then_last(tmp_path):
    assert selected_checkpoint(tmp_path) == tmp_path / "last.pt"
    (tmp_path / "last.pt").write_bytes(b"")
    assert selected_checkpoint(str(tmp_path)) == tmp_path / "last.pt"
    (tmp_path / "best.pt").write_bytes(b"")
    assert selected_checkpoint(tmp_path) == tmp_path / "best.pt"
