"""The live feed: libvirt's domain events of the test driver reach subscribers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import libvirt

from corral.config import parse_site_config
from corral.server.live import QUEUE_LIMIT, LiveChange, LiveFeed, Subscription

DOMAIN = """<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory>
<os><type>hvm</type></os></domain>"""

SITE = """
[paths]
templates = "{root}/templates"
state = "{root}/state.db"
runs = "{root}/runs"

[service_hosts.local]
uri = "test:///default"

[service_hosts.gone]
uri = "qemu+tcp://127.0.0.1:9/system"
"""


def _feed(tmp_path: Path, forgotten: list[LiveChange] | None = None) -> LiveFeed:
    """The feed of the test site; each time it calls its ``on_change`` (before a
    change is handed out), ``forgotten`` grows by one."""
    config = tmp_path / "corral.toml"
    config.write_text(SITE.format(root=tmp_path))
    count = forgotten if forgotten is not None else []
    return LiveFeed(parse_site_config(config.read_text(), config),
                    on_change=lambda: count.append(LiveChange("", None, "forgotten")))


async def _until(subscription: Subscription, wanted: set[tuple[str | None, str]],
                 seen: list[LiveChange], timeout_s: float = 10.0) -> list[LiveChange]:
    """Read changes into ``seen`` until it holds every (domain, event) wanted."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not wanted <= {(c.domain, c.event) for c in seen}:
        change = await subscription.next(max(0.0, deadline - loop.time()))
        if change is None:
            raise AssertionError(f"still waiting for {wanted}; saw {seen}")
        seen.append(change)
    return seen


def test_domain_changes_reach_a_subscriber_and_unreachable_hosts_are_said(
        tmp_path: Path) -> None:
    forgotten: list[LiveChange] = []
    feed = _feed(tmp_path, forgotten)

    async def scenario() -> list[LiveChange]:
        seen: list[LiveChange] = []
        async with feed.subscribe() as changes:
            feed.start()
            try:
                await _until(changes, {(None, "connected")}, seen)
                conn = libvirt.open("test:///default")
                dom = conn.defineXML(DOMAIN.format(name="live-probe"))
                try:
                    dom.create()
                    # as Corral records a start time right after a start
                    dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, "<started/>", "probe",
                                    "http://example.org/probe", libvirt.VIR_DOMAIN_AFFECT_LIVE)
                    dom.suspend()
                    dom.resume()
                    dom.destroy()
                finally:
                    dom.undefine()
                    conn.close()
                return await _until(changes, {
                    ("live-probe", e)
                    for e in ("defined", "started", "metadata", "suspended", "resumed",
                              "stopped", "undefined")} | {(None, "unreachable")}, seen)
            finally:
                feed.stop()

    seen = asyncio.run(scenario())
    probe = [c.event for c in seen if c.domain == "live-probe"]
    assert (probe.index("started") < probe.index("metadata") < probe.index("suspended")
            < probe.index("stopped"))
    assert {c.service_host for c in seen if c.event == "unreachable"} == {"gone"}
    assert {c.service_host for c in seen if c.event == "connected"} == {"local"}
    assert feed.reachable() == {"gone": False, "local": False}  # stopped
    # The server began a new status reading before each change was handed out,
    # so a page refreshed for a change waits for it.
    assert len(forgotten) >= len(seen)


def test_a_slow_subscriber_loses_changes_but_is_told_to_read_again() -> None:
    async def scenario() -> list[LiveChange]:
        subscription = Subscription(asyncio.get_running_loop())
        for n in range(QUEUE_LIMIT + 5):
            subscription.offer(LiveChange("h", f"d{n}", "started"))
        drained = [await subscription.next(0) for _ in range(QUEUE_LIMIT)]
        subscription.offer(LiveChange("h", "later", "stopped"))
        drained += [await subscription.next(0), await subscription.next(0)]
        return [c for c in drained if c is not None]

    seen = asyncio.run(scenario())
    assert len(seen) == QUEUE_LIMIT + 2
    assert [(c.domain, c.event) for c in seen[-2:]] == [(None, "resync"), ("later", "stopped")]
