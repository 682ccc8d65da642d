"""``/metrics``: Prometheus text, for an administrator's token or a metrics-only one."""

from __future__ import annotations

from fastapi import APIRouter, Response

from corral.ops.readings import readings
from corral.server.context import MetricsCaller
from corral.server.metrics import CONTENT_TYPE, render

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics: VMs, service "
            "hosts, requests, jobs")
def metrics(call: MetricsCaller) -> Response:
    with call.refusals("metrics", "/metrics"):
        found = readings(call.session)
    body = render(call.server.metrics, found, call.server.jobs.jobs.counts())
    return Response(body, media_type=CONTENT_TYPE)
