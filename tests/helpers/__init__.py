"""Plain helper functions shared by the tests (and by benchmarks/): import them, e.g. `from helpers.inference import
pattern_image`.

pytest runs with `--import-mode=importlib`, which puts nothing on sys.path and cannot import a conftest by name; so
pyproject's `pythonpath = ["tests"]` puts tests/ on sys.path in every process (xdist workers included) and this
package imports as `helpers`. Fixtures stay in the conftest.py files; only functions and constants live here.
"""
