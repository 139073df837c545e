"""Every models test starts from the same torch seed (the independent references live in tests/helpers/models.py)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
