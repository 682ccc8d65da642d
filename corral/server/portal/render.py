"""Pages from Jinja2 templates (``templates/``), autoescaped, with the portal's filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

# Read-only once made: the loader and filters; Jinja caches compiled templates itself.
TEMPLATES = Environment(
    loader=PackageLoader("corral.server.portal", "templates"),
    autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
    trim_blocks=True, lstrip_blocks=True,
)


def duration(seconds: float | None) -> str:
    """An uptime as people read it: ``3 d 4 h``, ``4 h 5 min``, ``5 min 3 s``."""
    if seconds is None:
        return "—"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %"


def mib(value: int | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1024:.1f} GiB" if value >= 10_240 else f"{value} MiB"


def clock(value: datetime | str | None) -> str:
    """A time in UTC, to the second."""
    if value is None:
        return "never"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


TEMPLATES.filters.update(duration=duration, percent=percent, mib=mib, clock=clock)


def render(template: str, **context: Any) -> str:
    return TEMPLATES.get_template(template).render(**context)


def page(template: str, *, status: int = 200, headers: dict[str, str] | None = None,
         **context: Any) -> HTMLResponse:
    """``template`` rendered as an HTML answer that no cache keeps."""
    answer = HTMLResponse(render(template, **context), status_code=status, headers=headers)
    answer.headers["Cache-Control"] = "no-store"
    return answer
