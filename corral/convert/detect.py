"""Which format a source file is in, when ``--from`` does not say."""

from __future__ import annotations

from corral.convert import dvhms, lcfg
from corral.errors import SourceErrors, Span

FORMATS = (dvhms.FORMAT, lcfg.FORMAT)


def detect(text: str, file: str) -> str:
    """The format of ``text``; a file of no known format is one error naming it."""
    if dvhms.looks_like(text):
        return dvhms.FORMAT
    if lcfg.looks_like(text):
        return lcfg.FORMAT
    raise SourceErrors.single(
        Span(file, 1, 1), "cannot tell the format: neither DVHMS XML (a VHMS element) nor "
        "LCFG xen resources (!xen.KEY mSET(...))", hint="say it with --from dvhms|lcfg")
