"""Many projects in one command: ``corral up A.corral B.corral ...`` (MLN's course of 60
group projects).

Each project is brought up on its own, all of them at once (each under its
own project lock, sharing the session's connections, worker bound and boot
places); a project that fails fails alone, named with its error, while the
others complete; the result says which is which. Their hosts that the
scheduler places are placed first, one project after another in the order
given, each counting what the ones before it placed
(:mod:`corral.ops.pending`), so that they spread over the service hosts as
one project's hosts would, the same way each time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.errors import CorralError
from corral.ops.projects import place_ahead, up
from corral.ops.results import ApplyResult
from corral.ops.session import Session
from corral.ops.source import ProjectSource, SourceLike, as_source


@dataclass(frozen=True)
class ManyResult:
    """Each project's result, in the order given; ``failed`` maps a source to its error."""

    results: tuple[ApplyResult, ...] = ()
    failed: dict[str, CorralError] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and all(r.ok for r in self.results)

    def as_json(self) -> dict[str, Any]:
        return {
            "operation": "up",
            "projects": [r.as_json() for r in self.results],
            "failed": {
                name: {"error": error.message, "kind": error.category}
                for name, error in self.failed.items()
            },
        }


def up_many(
    session: Session, sources: list[SourceLike], *, recreate: bool = False, wait: bool = True,
    wait_lock: bool = True,
) -> ManyResult:
    """``up`` of every source at once; one failure does not stop the others."""
    def one(source: SourceLike) -> ApplyResult | CorralError:
        try:  # a file that cannot even be read fails alone too
            return up(session, as_source(source), recreate=recreate, wait=wait,
                      wait_lock=wait_lock)
        except CorralError as error:
            return error

    for source in sources:
        place_ahead(session, source)
    results: list[ApplyResult] = []
    failed: dict[str, CorralError] = {}
    for source, outcome in zip(sources, session.parallel(one, sources), strict=True):
        if isinstance(outcome, CorralError):
            failed[source.name if isinstance(source, ProjectSource) else str(source)] = outcome
        else:
            results.append(outcome)
    return ManyResult(tuple(results), failed)
