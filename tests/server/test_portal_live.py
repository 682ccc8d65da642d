"""The overview's event stream from a real server: rows at once, then again as soon
as libvirt reports a change, well before the periodic refresh."""

from __future__ import annotations

import time
from typing import Any

import httpx
import libvirt
from portal_support import NAMES, PASSWORD, give_passwords, login_post, serving, sse_events
from server_support import Cast

from corral.config import SiteConfig
from corral.ops.session import Session
from corral.server.app import create_app
from corral.server.portal.feed import PERIOD_S


def test_a_domain_change_reaches_the_overview_stream_at_once(
    site: SiteConfig, admin_session: Session, cast: Cast, lab: dict[str, Any]
) -> None:
    give_passwords(admin_session)
    with serving(create_app(site)) as url, httpx.Client(base_url=url, timeout=30) as client:
        logged_in = login_post(client, {"user": NAMES["owner"], "password": PASSWORD})
        assert logged_in.status_code == 303
        with client.stream("GET", "/overview/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = sse_events(stream.iter_lines())
            first = next(data for event, data in events if event == "vms")
            assert 'data-vm="lab.web" data-state="running"' in first
            time.sleep(0.5)
            conn = libvirt.open("test:///default")
            try:
                conn.lookupByName("lab-web").suspend()
                changed_at = time.monotonic()
                for event, data in events:
                    if event == "vms" and 'data-vm="lab.web" data-state="paused"' in data:
                        break
                waited = time.monotonic() - changed_at
            finally:
                conn.lookupByName("lab-web").resume()
                conn.close()
    assert waited < PERIOD_S / 2, f"the change took {waited:.1f} s to show"


def test_a_vm_page_follows_its_vm_and_ends_when_it_is_hidden(
    site: SiteConfig, admin_session: Session, cast: Cast, lab: dict[str, Any]
) -> None:
    from corral.ops.access import unshare_project

    give_passwords(admin_session)
    with serving(create_app(site)) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert login_post(client, {"user": NAMES["writer"], "password": PASSWORD}
                           ).status_code == 303
        with client.stream("GET", "/vms/lab.web/events") as stream:
            events = sse_events(stream.iter_lines())
            first = next(data for event, data in events if event == "details")
            assert ">running<" in first and "Pause lab.web" in first
            conn = libvirt.open("test:///default")
            try:
                conn.lookupByName("lab-web").suspend()
                paused = next(data for event, data in events
                              if event == "details" and ">paused<" in data)
                assert "Resume lab.web" in paused and "Pause lab.web" not in paused
            finally:
                conn.lookupByName("lab-web").resume()
                conn.close()
            unshare_project(admin_session, admin_session.identity, "lab", "dave")
            ended = next(data for event, data in events if event == "ended")
            assert "no longer yours to see" in ended
        assert client.get("/vms/lab.web/events").status_code == 404
