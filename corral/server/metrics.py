"""``/metrics`` in the Prometheus text format.

Two parts: what the server counts as it goes (requests by route, method and
status, and their latencies), kept in a registry of its own app; and what is
read when the metrics are asked for (each Corral VM's state, CPU time,
memory and vCPUs, each service host's reachability, jobs by state), from
:func:`corral.ops.readings.readings` and the jobs table. A route is named by
its template (``/api/v1/projects/{project}``), so the series stay few
whatever names clients use.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.ops.readings import HostReading

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"
MIB = 1024 * 1024


class RequestMetrics:
    """Request counts and latencies of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "corral_http_requests", "HTTP requests answered, by route, method and status",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "corral_http_request_duration_seconds", "Time to answer an HTTP request",
            ["route", "method", "status"], registry=self.registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)


class CountRequests:
    """ASGI middleware timing every HTTP request into :class:`RequestMetrics`."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.monotonic()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or UNMATCHED
            self.metrics.observe(name, scope.get("method", ""), status,
                                 time.monotonic() - began)


class _Readings(Collector):
    """The figures read for one scrape, as metric families."""

    def __init__(self, readings: list[HostReading], jobs: Mapping[str, int]) -> None:
        self._readings = readings
        self._jobs = jobs

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("corral_service_host_up",
                               "1 when the service host answered in time, else 0",
                               labels=["service_host"])
        state = GaugeMetricFamily("corral_vm_state", "1 for the state each Corral VM is in",
                                  labels=["project", "host", "service_host", "state"])
        cpu = CounterMetricFamily("corral_vm_cpu_seconds", "CPU time a Corral VM has used",
                                  labels=["project", "host", "service_host"])
        memory = GaugeMetricFamily("corral_vm_memory_bytes", "Memory of a Corral VM",
                                   labels=["project", "host", "service_host"])
        vcpus = GaugeMetricFamily("corral_vm_vcpus", "Virtual CPUs of a Corral VM",
                                  labels=["project", "host", "service_host"])
        for reading in self._readings:
            up.add_metric([reading.service_host], 1 if reading.reachable else 0)
            for vm in reading.domains:
                labels = [vm.project, vm.host, reading.service_host]
                state.add_metric([*labels, vm.state.value], 1)
                if vm.cpu_time_ns is not None:
                    cpu.add_metric(labels, vm.cpu_time_ns / 1e9)
                if vm.memory_mib is not None:
                    memory.add_metric(labels, vm.memory_mib * MIB)
                if vm.vcpus is not None:
                    vcpus.add_metric(labels, vm.vcpus)
        jobs = GaugeMetricFamily("corral_jobs", "Jobs of the server by state", labels=["state"])
        for name, count in sorted(self._jobs.items()):
            jobs.add_metric([name], count)
        yield from (up, state, cpu, memory, vcpus, jobs)


def render(metrics: RequestMetrics, readings: list[HostReading],
           jobs: Mapping[str, int]) -> bytes:
    """The text of one scrape: the figures read now, then the request counters."""
    scrape = CollectorRegistry()
    scrape.register(_Readings(readings, jobs))
    return generate_latest(scrape) + generate_latest(metrics.registry)
