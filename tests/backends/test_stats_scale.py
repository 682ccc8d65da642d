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


def test_full_statistics_are_asked_only_of_the_projects_domains(backend) -> None:
    """Balloon and vCPU statistics make libvirt query each running QEMU: a
    project's status must not pay for other projects' or other users' guests."""
    template = domain_xml.build_domain(
        DOMAINS["direct-boot"], console_log=console_log_of("direct-boot")
    )
    conn = backend.conn
    for project in ("lab", "other"):
        for i in range(3):
            root = etree.fromstring(etree.tostring(template))
            root.find("name").text = f"{project}-n{i}"
            root.find("metadata/{*}corral/{*}project").text = project
            root.find("metadata/{*}corral/{*}host").text = f"n{i}"
            conn.defineXML(etree.tostring(root, encoding="unicode")).create()
    asked: list[list[str]] = []
    real = conn.domainListGetStats

    def spy(domains, stats, flags=0):  # type: ignore[no-untyped-def]
        asked.append(sorted(d.name() for d in domains))
        return real(domains, stats, flags)

    conn.domainListGetStats = spy
    rows = backend.domain_stats("lab")
    assert [r.domain for r in rows] == ["lab-n0", "lab-n1", "lab-n2"]
    assert asked == [["lab-n0", "lab-n1", "lab-n2"]]  # not "test", not other-*
    assert len(backend.domain_stats()) == 6
