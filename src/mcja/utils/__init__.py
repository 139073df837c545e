"""Small shared helpers (file I/O, devices) with no dependency on the rest of the package."""
