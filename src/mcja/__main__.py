"""`python -m mcja ...` (also what `torchrun -m mcja ...` runs)."""

from mcja.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
