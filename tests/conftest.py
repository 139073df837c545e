"""Shared test settings: tiny work, deterministic seeds."""

import os

os.environ.setdefault("MCJA_CACHE_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "mcja-test-cache"))
