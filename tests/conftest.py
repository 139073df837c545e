"""Shared test settings: one torch thread per test process, a private image cache, tiny work."""

import os

# pytest-xdist runs one process per core; more threads per process would oversubscribe the cores
# (OpenMP threads spin-wait), which makes small CPU ops tens of times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MCJA_CACHE_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "mcja-test-cache"))

import torch  # noqa: E402

torch.set_num_threads(1)
