"""Make the per-query reference loops and small synthetic datasets (eval_helpers.py) importable."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
