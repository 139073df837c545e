"""File names that are not UTF-8 (e.g. `café.jpg` written in Latin-1: b'caf\\xe9.jpg').

Python reads such a name as a str whose undecodable bytes are PEP 383 surrogate escapes (U+DC80..U+DCFF,
`os.fsdecode`); `os.fsencode` gives the exact bytes back, so every path mcja keeps stays such a str. SQLite and
UTF-8 text streams refuse those characters: the index stores the raw bytes instead (`mcja.index.store`), JSON
carries them as `\\udcXX` escapes, and text meant for a person goes through `printable`.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with each undecodable byte of a file name written as `\\xNN` (`caf\\xe9.jpg`): safe to print, log or
    store as UTF-8 text; unchanged when it is valid Unicode already."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte (e.g. read from JSON)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")

