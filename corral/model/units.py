"""Sizes in project files (``128M``, ``256MB``, ``2GB``, ``512k``) as whole MiB.

MLN writes sizes with binary units and a plain number means megabytes; the
model keeps every size as an ``int`` of MiB so later stages never parse text.
Kilobytes round up to a whole MiB (never to zero), because a disk or a memory
size of 0 is never what was meant.
"""

from __future__ import annotations

import re

_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kKmMgGtT]?)(?:[iI]?[bB])?")

_KIB_PER_UNIT = {"k": 1, "m": 1024, "g": 1024**2, "t": 1024**3, "": 1024}


class SizeError(ValueError):
    """A size word that is not a number with an optional K/M/G/T unit."""


def parse_size_mib(text: str) -> int:
    """``"2GB"`` -> 2048; plain numbers are MiB; ``k`` rounds up to 1 MiB minimum."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise SizeError(f"'{text}' is not a size (use e.g. 512M, 2G, 1024)")
    kib = float(match["number"]) * _KIB_PER_UNIT[match["unit"].lower()]
    mib = -(-round(kib) // 1024)  # ceiling division
    if mib < 1:
        raise SizeError(f"size '{text}' is zero")
    return mib
