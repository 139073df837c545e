"""mcja: visible-infrared person re-identification with MCJA (TCSVT 2024).

`mcja.api` has the verbs as functions (train, test, extract, search, export, index_*, serve, demo, ...);
`mcja.FeatureExtractor` turns images into features with a trained model; `mcja.GalleryIndex` searches an
archive of them.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["FeatureExtractor", "GalleryIndex", "__version__"]


def __getattr__(name: str) -> Any:
    # Through mcja.api, which imports them on first use, so `import mcja` stays light (no torch import) for the
    # CLI's --help and --version.
    if name in ("FeatureExtractor", "GalleryIndex"):
        from mcja import api

        return getattr(api, name)
    raise AttributeError(f"module 'mcja' has no attribute {name!r}")
