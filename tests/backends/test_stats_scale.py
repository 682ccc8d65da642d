"""domain_stats stays one bulk call: 1,000 test-driver domains in well under a second."""

from __future__ import annotations

import time

from lxml import etree
from scenarios import DOMAINS, console_log_of

from corral.backends import DomainState
from corral.backends.libvirt import domain_xml


def test_status_of_1000_domains_under_one_second(backend) -> None:
    template = domain_xml.build_domain(
        DOMAINS["direct-boot"], console_log=console_log_of("direct-boot")
    )
    conn = backend.conn
    for i in range(1000):
        root = etree.fromstring(etree.tostring(template))
        root.find("name").text = f"lab-n{i}"
        root.find("metadata/{*}corral/{*}host").text = f"n{i}"
        domain = conn.defineXML(etree.tostring(root, encoding="unicode"))
        if i % 2 == 0:
            domain.create()
    started = time.perf_counter()
    rows = backend.domain_stats()
    elapsed = time.perf_counter() - started
    assert len(rows) == 1000
    assert sum(r.state is DomainState.RUNNING for r in rows) == 500
    assert elapsed < 1.0, f"domain_stats took {elapsed:.2f} s"
