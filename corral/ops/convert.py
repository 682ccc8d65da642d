"""``corral convert``: another manager's configuration as a Corral project.

The reader of the format (:mod:`corral.convert`) writes the project; this
operation reads the file, picks the format, and loads what was written the
way ``corral validate`` does (with the service hosts of the site-config
fragment), so a conversion never hands back a project Corral refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from corral.config import SiteConfig, parse_site_config
from corral.convert import dvhms, lcfg, vmgen
from corral.convert.detect import FORMATS, detect
from corral.convert.result import Conversion
from corral.errors import CorralError, SourceErrors, Span
from corral.lang.load import decode
from corral.ops.source import ProjectSource

Reader = Callable[[str, str, str], Conversion]
READERS: dict[str, Reader] = {dvhms.FORMAT: dvhms.convert, lcfg.FORMAT: lcfg.convert,
                               vmgen.FORMAT: vmgen.convert}


class ConversionFailed(CorralError):
    """The converter wrote a project Corral refuses: a bug of the converter."""


def convert_file(path: Path, source_format: str | None = None) -> Conversion:
    """The conversion of the file at ``path`` (``source_format`` None: detected)."""
    file = str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SourceErrors.single(Span(file, 1, 1),
                                  f"cannot read: {error.strerror or error}") from None
    text = decode(data, file)
    chosen = source_format or detect(text, file)
    if chosen not in READERS:
        raise SourceErrors.single(Span(file, 1, 1), f"unknown format {chosen!r}",
                                  hint="one of " + ", ".join(FORMATS))
    stem = path.stem or "converted"
    conversion = READERS[chosen](text, file, stem)
    check(conversion, path.with_suffix(".corral"))
    return conversion


def check(conversion: Conversion, name: Path) -> None:
    """Load the converted project as ``corral validate`` does, with a site that has
    the fragment's service hosts; a refusal is the converter's bug."""
    site = SiteConfig()
    if conversion.site_config is not None:
        site = parse_site_config(conversion.site_config, name.with_suffix(".toml"))
    source = ProjectSource(conversion.project, str(name), name.parent.absolute())
    try:
        source.load(site)
    except SourceErrors as errors:
        raise ConversionFailed(
            f"the {conversion.format} conversion wrote a project Corral refuses (a bug of "
            f"the converter): {errors.render()}") from None
