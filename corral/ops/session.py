"""A session: the site configuration and the collaborators operations need.

One session serves one CLI invocation or one server request scope. It opens
backends (one per service host, one libvirt connection each) on first use and
keeps them until closed; nothing here is global, so tests and the server can
hold several sessions side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TypeVar

from corral.backends.base import Backend, Capabilities
from corral.backends.registry import BackendOpener
from corral.config import SiteConfig, load_site_config
from corral.errors import CorralError, NotFoundError
from corral.images.registry import TemplateRegistry
from corral.ops.booting import BootPlaces
from corral.ops.deadline import each_within
from corral.ops.identity import Identity
from corral.ops.pending import PendingPlacements
from corral.ops.reporting import Reporter, SilentReporter
from corral.ops.workers import HostPlaces, host_bound, overall_bound, run_bounded
from corral.state.store import StateStore

T = TypeVar("T")
R = TypeVar("R")
BackendFactory = Callable[[str, str, Path], Backend]
# How long the CPU count of a service host (for its worker bound) is waited for.
CPU_COUNT_TIMEOUT_S = 5.0


def _libvirt_backend(
    site: SiteConfig, opener: BackendOpener, name: str, uri: str, runs: Path
) -> Backend:
    """A remote service host keeps its template copies in its ``storage``
    directory, else at the path of the site's ``paths.templates``."""
    config = site.service_hosts.get(name)
    storage = config.storage if config is not None and config.storage else None
    return opener.open(name, uri, runs, storage or site.paths.templates)


class Session:
    """Site config + template registry + state store + backends, opened lazily,
    for one identity."""

    def __init__(
        self,
        site: SiteConfig,
        reporter: Reporter | None = None,
        *,
        backend_factory: BackendFactory | None = None,
        max_workers: int | None = None,
        per_host_workers: int | None = None,
        identity: Identity | None = None,
        store: StateStore | None = None,
    ) -> None:
        self.site = site
        # Who the operations act for: the server's authenticated user, else the
        # site administrator at the machine (the CLI).
        self.identity = identity or Identity.site_administrator()
        self.reporter: Reporter = reporter or SilentReporter()
        self.max_workers = max_workers  # overall bound of a parallel step; None: the rule
        # calls at once per service host instead of the rule (benchmarks compare counts)
        self.per_host_workers = per_host_workers
        self._backend_factory = backend_factory or partial(
            _libvirt_backend, site, BackendOpener())
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        self._registry: TemplateRegistry | None = None
        # A store given by the caller (the server's, open for its whole life) is
        # shared by many sessions: this one neither opens nor closes it.
        self._store: StateStore | None = store
        self._owns_store = store is None
        self._store_error: CorralError | None = None
        self._warnings: list[str] = []
        self._capabilities: dict[str, Capabilities] = {}
        self._host_workers: dict[str, int] = {}
        self._host_places = HostPlaces(self.host_workers)
        self._boot_places: dict[str, BootPlaces] = {}
        # where the scheduler put the new hosts of the projects this session places
        self.pending_placements = PendingPlacements()

    @classmethod
    def open(cls, config_path: Path | None, reporter: Reporter | None = None) -> Session:
        return cls(load_site_config(config_path), reporter)

    # ---- collaborators
    @property
    def registry(self) -> TemplateRegistry:
        if self._registry is None:
            self._registry = TemplateRegistry(self.site.paths.templates)
        return self._registry

    @property
    def store(self) -> StateStore | None:
        """The state database, or None when it cannot be opened.

        Libvirt is the source of truth; the database only adds history and
        the last project file. Losing it must never stop an operation.
        """
        if self._store is None and self._store_error is None:
            try:
                self._store = StateStore(self.site.state_location())
            except CorralError as error:
                self._store_error = error
                self.warn(f"state database unavailable, going on without it: {error.message}")
        return self._store

    def require_store(self) -> StateStore:
        """The state database, for operations that cannot go on without it (users,
        tokens, shares, audit): its opening error is raised, not warned about."""
        if self._store is not None:
            return self._store
        if self._store_error is not None:
            raise self._store_error
        self._store = StateStore(self.site.state_location())
        return self._store

    # ---- warnings
    def warn(self, message: str) -> None:
        """Something went wrong but the operation goes on: told to the reporter now
        and kept, so the operation's result can list it."""
        with self._lock:
            self._warnings.append(message)
        self.reporter.warn(message)

    def warnings_since(self, mark: int) -> tuple[str, ...]:
        """Warnings given after :meth:`warning_mark` returned ``mark``."""
        with self._lock:
            return tuple(self._warnings[mark:])

    def warning_mark(self) -> int:
        with self._lock:
            return len(self._warnings)

    def capabilities(self, service_host: str) -> Capabilities:
        """What the service host can do live, asked of it once per session."""
        with self._lock:
            known = self._capabilities.get(service_host)
        if known is None:
            known = self.backend(service_host).capabilities()
            with self._lock:
                self._capabilities[service_host] = known
        return known

    def boot_places(self, service_host: str, choose: Callable[[], int]) -> BootPlaces:
        """The places guests boot in on ``service_host``, shared by every project this
        session starts (see :mod:`corral.ops.booting`); their number is ``choose()``-n
        by the first project that boots there."""
        with self._lock:
            known = self._boot_places.get(service_host)
        if known is not None:
            return known
        chosen = BootPlaces(choose())
        with self._lock:
            return self._boot_places.setdefault(service_host, chosen)

    def service_host_names(self) -> list[str]:
        return list(self.site.service_hosts)

    def backend(self, service_host: str) -> Backend:
        """The backend of a configured service host, connected on first use."""
        with self._lock:
            found = self._backends.get(service_host)
            if found is not None:
                return found
            config = self.site.service_hosts.get(service_host)
            if config is None:
                known = ", ".join(sorted(self.site.service_hosts)) or "none"
                raise NotFoundError(
                    f"service host '{service_host}' is not in the site configuration",
                    hint=f"configured service hosts: {known}",
                )
            backend = self._backend_factory(service_host, config.uri,
                                            self.site.runs_of(service_host))
            self._backends[service_host] = backend
            return backend

    @property
    def connected(self) -> bool:
        """Whether a backend has been opened (closing the session closes it)."""
        with self._lock:
            return bool(self._backends)

    def backends(self, names: Iterable[str] | None = None) -> list[Backend]:
        return [self.backend(n) for n in (names or self.service_host_names())]

    def host_workers(self, service_host: str) -> int:
        """How many calls at once this session may make on ``service_host``: from its
        CPU count (asked once per session, within a few seconds; a host that does
        not say gets the minimum), see :mod:`corral.ops.workers`."""
        if self.per_host_workers is not None:
            return self.per_host_workers
        with self._lock:
            known = self._host_workers.get(service_host)
        if known is not None:
            return known
        (answer,) = each_within(
            lambda n: self.backend(n).host_info().cpus, [service_host], CPU_COUNT_TIMEOUT_S
        )
        bound = host_bound(answer if isinstance(answer, int) else None)
        with self._lock:
            self._host_workers[service_host] = bound
        return bound

    def each(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        where: Callable[[T], str | None] | None = None,
    ) -> list[R | CorralError]:
        """Run ``fn`` over independent items in parallel; results in input order,
        the CorralError an item raised being its result (one failing item, or one
        failing service host, stops nothing else). ``where`` names an item's
        service host, which bounds how many of its items run at once."""
        items = list(items)
        done, failed = self._run(fn, items, where)
        return [failed[i] if i in failed else done[i] for i in range(len(items))]

    def parallel(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        where: Callable[[T], str | None] | None = None,
    ) -> list[R]:
        """:meth:`each` for steps that fail as a whole: every item runs even when
        one fails; the first error is raised after."""
        items = list(items)
        done, failed = self._run(fn, items, where)
        for index in sorted(failed):
            raise failed[index]
        return [done[i] for i in range(len(items))]

    def _run(
        self, fn: Callable[[T], R], items: list[T], where: Callable[[T], str | None] | None
    ) -> tuple[dict[int, R], dict[int, CorralError]]:
        if not items:
            return {}, {}
        overall = self.max_workers or overall_bound(len(items))
        return run_bounded(
            fn, items, where=where or (lambda _item: None),
            per_host=self.host_workers, overall=overall, places=self._host_places,
        )

    def close(self) -> None:
        with self._lock:
            for backend in self._backends.values():
                close = getattr(backend, "close", None)
                if close:
                    close()
            self._backends.clear()
        if self._store is not None and self._owns_store:
            self._store.close()
            self._store = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
