"""Which format a source file is in, when ``--from`` does not say."""

from __future__ import annotations

from corral.convert import dvhms, lcfg, vmgen
from corral.errors import SourceErrors, Span

FORMATS = (dvhms.FORMAT, lcfg.FORMAT, vmgen.FORMAT)


def detect(text: str, file: str) -> str:
    """The format of ``text``; a file of no known format is one error naming it."""
    if dvhms.looks_like(text):
        return dvhms.FORMAT
    if lcfg.looks_like(text):
        return lcfg.FORMAT
    if vmgen.looks_like(text):
        return vmgen.FORMAT
    raise SourceErrors.single(
        Span(file, 1, 1), "cannot tell the format: neither DVHMS XML (a VHMS element), "
        "LCFG xen resources (!xen.KEY mSET(...)) nor a vmgen INI file (a [machine] section)",
        hint="say it with --from dvhms|lcfg|vmgen")
