"""mcja: visible-infrared person re-identification with MCJA (TCSVT 2024)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
