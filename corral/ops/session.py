"""A session: the site configuration and the collaborators operations need.

One session serves one CLI invocation or one server request scope. It opens
backends (one per service host, one libvirt connection each) on first use and
keeps them until closed; nothing here is global, so tests and the server can
hold several sessions side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

from corral.backends.base import Backend, Capabilities
from corral.config import SiteConfig, load_site_config
from corral.errors import CorralError, NotFoundError
from corral.images.registry import TemplateRegistry
from corral.ops.reporting import Reporter, SilentReporter
from corral.state.store import StateStore

T = TypeVar("T")
R = TypeVar("R")
BackendFactory = Callable[[str, str, Path], Backend]

DEFAULT_WORKERS = 4


def _libvirt_backend(site: SiteConfig, name: str, uri: str, runs: Path) -> Backend:
    """A remote service host keeps its template copies in its ``storage``
    directory, else at the path of the site's ``paths.templates``."""
    from corral.backends.registry import open_backend

    config = site.service_hosts.get(name)
    storage = config.storage if config is not None and config.storage else None
    return open_backend(name, uri, runs, storage or site.paths.templates)


class Session:
    """Site config + template registry + state store + backends, opened lazily."""

    def __init__(
        self,
        site: SiteConfig,
        reporter: Reporter | None = None,
        *,
        backend_factory: BackendFactory | None = None,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        self.site = site
        self.reporter: Reporter = reporter or SilentReporter()
        self.workers = workers
        self._backend_factory = backend_factory or partial(_libvirt_backend, site)
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        self._registry: TemplateRegistry | None = None
        self._store: StateStore | None = None
        self._store_failed = False
        self._warnings: list[str] = []
        self._capabilities: dict[str, Capabilities] = {}

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
        if self._store is None and not self._store_failed:
            try:
                self._store = StateStore(self.site.paths.state)
            except CorralError as error:
                self._store_failed = True
                self.warn(f"state database unavailable, going on without it: {error.message}")
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
            backend = self._backend_factory(service_host, config.uri, self.site.paths.runs)
            self._backends[service_host] = backend
            return backend

    def backends(self, names: Iterable[str] | None = None) -> list[Backend]:
        return [self.backend(n) for n in (names or self.service_host_names())]

    def parallel(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Run ``fn`` over independent items with a bounded pool; results in input order.

        Every item runs even when one fails; the first error is raised after.
        """
        items = list(items)
        if len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            futures = [pool.submit(fn, i) for i in items]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]

    def close(self) -> None:
        with self._lock:
            for backend in self._backends.values():
                close = getattr(backend, "close", None)
                if close:
                    close()
            self._backends.clear()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
