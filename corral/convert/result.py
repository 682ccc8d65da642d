"""What a conversion produces: the project text, a site-config fragment, warnings.

Warnings carry the source line they are about, so that nothing the converter
could not carry over is dropped silently: the caller prints them as
``FILE:LINE: warning: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ConvertWarning:
    """Something of the source that Corral cannot say, or that contradicts itself."""

    line: int
    message: str

    def render(self, file: str) -> str:
        return f"{file}:{self.line}: warning: {self.message}"

    def as_json(self) -> dict[str, object]:
        return {"line": self.line, "message": self.message}


@dataclass(frozen=True, slots=True)
class Conversion:
    """A converted source: ``project`` is Corral's block language; ``site_config``
    is TOML for the service hosts the source names (None when it names none)."""

    format: str
    project: str
    site_config: str | None = None
    warnings: tuple[ConvertWarning, ...] = field(default=())

    def as_json(self) -> dict[str, object]:
        return {
            "format": self.format,
            "project": self.project,
            "site_config": self.site_config,
            "warnings": [w.as_json() for w in self.warnings],
        }


class Warnings:
    """Collects the warnings of one conversion, in source order."""

    def __init__(self) -> None:
        self._items: list[ConvertWarning] = []

    def add(self, line: int, message: str) -> None:
        self._items.append(ConvertWarning(line, message))

    def done(self) -> tuple[ConvertWarning, ...]:
        return tuple(sorted(self._items, key=lambda w: w.line))
