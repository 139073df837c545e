"""Run the `mcja` command in this process and read what it printed (pytest's capsys)."""

from __future__ import annotations

import pytest

from mcja.cli import main


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """Run `mcja ARGV`: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys: pytest.CaptureFixture, *parts: str) -> str:
    """What the last command printed on stderr, checked to be one line holding every part."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(p in err for p in parts), err
    return err
