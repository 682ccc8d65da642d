"""Jobs: the state, events and result of a long operation, and its events as a stream.

A job is its owner's (and the administrators'); to anyone else it is "not
found", like one that does not exist.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from corral.server import models
from corral.server.context import Caller
from corral.server.jobs import event_json, job_json
from corral.state.jobs import Jobs

router = APIRouter(tags=["jobs"])
JobId = Annotated[str, Path(max_length=64, description="The id a 202 answer gave.")]
POLL_S = 0.2
# A comment line now and then keeps proxies from closing a quiet stream.
KEEPALIVE_S = 15.0


@router.get("/jobs", response_model=list[models.Job],
             summary="The caller's jobs (administrators: everyone's), newest first")
def list_jobs(call: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100
              ) -> list[dict[str, Any]]:
    owner = None if call.identity.admin else call.identity.name
    return [job_json(j) for j in call.server.jobs.jobs.newest(owner, limit)]


@router.get("/jobs/{job_id}", response_model=models.JobWithEvents,
             summary="A job: state, progress events and result")
def get_job(call: Caller, job_id: JobId) -> dict[str, Any]:
    job = call.server.jobs.readable(call.identity, job_id)
    return job_json(job, call.server.jobs.jobs.events(job.id))


@router.get("/jobs/{job_id}/events",
             summary="A job's events as server-sent events, until it "
            "ends", response_class=StreamingResponse)
def job_events(call: Caller, job_id: JobId,
               last_event_id: Annotated[str | None, Header(max_length=20)] = None
               ) -> StreamingResponse:
    job = call.server.jobs.readable(call.identity, job_id)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return StreamingResponse(_stream(call.server.jobs.jobs, job.id, after),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


async def _stream(jobs: Jobs, job_id: str, after: int) -> AsyncIterator[str]:
    """Every event after ``after``, then an ``end`` event with the job's final state.

    Asynchronous, so a stream waiting for its job holds no thread: only the
    database reads run on the thread pool."""
    quiet_since = time.monotonic()
    while True:
        job = await run_in_threadpool(jobs.get, job_id)
        for event in await run_in_threadpool(jobs.events, job_id, after):
            after = event.seq
            quiet_since = time.monotonic()
            yield f"id: {event.seq}\nevent: {event.kind}\ndata: {json.dumps(event_json(event))}\n\n"
        if job is None or job.finished:
            final = job_json(job) if job is not None else {"id": job_id, "state": "unknown"}
            yield f"event: end\ndata: {json.dumps(final)}\n\n"
            return
        if time.monotonic() - quiet_since > KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_S)
