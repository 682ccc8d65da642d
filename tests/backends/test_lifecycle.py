"""Lifecycle, resources and status on libvirt's test driver."""

from __future__ import annotations

import time

import pytest
from lxml import etree
from scenarios import DOMAINS, direct_template, host, spec

from corral.backends import DomainState, ShutdownOutcome
from corral.errors import BackendError, NotFoundError


def _state(backend, name: str) -> DomainState:
    (row,) = [r for r in backend.domain_stats() if r.domain == name]
    return row.state


def test_power_cycle_states(backend) -> None:
    name = backend.define_domain(DOMAINS["direct-boot"])
    assert _state(backend, name) is DomainState.SHUTOFF
    backend.start(name)
    assert _state(backend, name) is DomainState.RUNNING
    backend.pause(name)
    assert _state(backend, name) is DomainState.PAUSED
    backend.pause(name)  # already paused: quietly done
    backend.resume(name)
    assert _state(backend, name) is DomainState.RUNNING
    backend.suspend(name)
    assert _state(backend, name) is DomainState.SUSPENDED
    backend.restore(name)
    assert _state(backend, name) is DomainState.RUNNING
    backend.destroy(name)
    backend.destroy(name)  # already off
    assert _state(backend, name) is DomainState.SHUTOFF


def test_restore_without_saved_state_is_a_clear_error(backend) -> None:
    name = backend.define_domain(DOMAINS["direct-boot"])
    with pytest.raises(BackendError, match="has no saved state to restore"):
        backend.restore(name)


def test_shutdown_reports_how_it_ended(backend) -> None:
    name = backend.define_domain(DOMAINS["direct-boot"])
    assert backend.shutdown(name, timeout_s=1) is ShutdownOutcome.ALREADY_OFF
    backend.start(name)
    # The test driver's guest powers off on the ACPI request at once.
    assert backend.shutdown(name, timeout_s=5) is ShutdownOutcome.CLEAN
    assert _state(backend, name) is DomainState.SHUTOFF


def test_unknown_domain_is_not_found(backend) -> None:
    with pytest.raises(NotFoundError, match="no domain 'lab-nope'"):
        backend.start("lab-nope")


def test_uptime_comes_from_the_recorded_start(backend) -> None:
    name = backend.define_domain(DOMAINS["direct-boot"])
    (row,) = backend.domain_stats("lab")
    assert row.uptime_s is None and row.cpu_percent is None
    before = time.time()
    backend.start(name)
    (row,) = backend.domain_stats("lab")
    assert row.state is DomainState.RUNNING
    assert row.uptime_s is not None and 0 <= row.uptime_s <= time.time() - before + 1
    assert (row.project, row.host, row.service_host) == ("lab", "tiny1", "local")
    assert row.memory_mib == 128 and row.vcpus == 1
    backend.destroy(name)
    backend.start(name)
    (row,) = backend.domain_stats("lab")
    assert row.uptime_s is not None and row.uptime_s < 5


def test_live_memory_and_vcpus_within_maximum(backend) -> None:
    name = backend.define_domain(DOMAINS["maxmem-maxvcpus"])
    backend.start(name)
    backend.set_memory(name, 512)
    backend.set_vcpus(name, 3)
    info = backend.conn.lookupByName(name).info()
    assert info[2] == 512 * 1024 and info[3] == 3
    with pytest.raises(BackendError, match="its maximum is 1024 MiB"):
        backend.set_memory(name, 2048)


def test_config_only_change_on_a_stopped_domain(backend) -> None:
    name = backend.define_domain(DOMAINS["maxmem-maxvcpus"])
    backend.set_memory(name, 300, live=True, config=True)  # live skipped: not running
    root = etree.fromstring(backend.describe(name).encode())
    assert root.findtext("currentMemory") == str(300 * 1024)
    with pytest.raises(BackendError, match="not running"):
        backend.set_vcpus(name, 2, live=True, config=False)


def test_undefine_removes_managed_save(backend) -> None:
    name = backend.define_domain(DOMAINS["direct-boot"])
    backend.start(name)
    backend.suspend(name)
    backend.undefine(name)
    backend.undefine(name)  # already gone
    assert backend.observe("lab").domains == ()


def test_redefine_while_running_updates_live_marks(backend) -> None:
    name = backend.define_domain(DOMAINS["direct-boot"])
    backend.start(name)
    changed = host("tiny1", memory_mib=64)
    backend.define_domain(spec(changed, direct_template()))
    (seen,) = backend.observe("lab").domains
    assert seen.model_hash == changed.model_hash()
    assert backend.domain_stats("lab")[0].uptime_s is not None


def test_start_time_rides_in_the_live_mark_only(backend) -> None:
    """One metadata call per domain gives status both mark and uptime; the
    persistent definition never carries a start time."""
    import libvirt

    from corral.backends.libvirt.metadata import NS, RUNTIME_NS, parse_domain_mark_xml

    name = backend.define_domain(DOMAINS["direct-boot"])
    before = time.time()
    backend.start(name)
    domain = backend.conn.lookupByName(name)
    element = libvirt.VIR_DOMAIN_METADATA_ELEMENT
    live = parse_domain_mark_xml(domain.metadata(element, NS, libvirt.VIR_DOMAIN_AFFECT_LIVE))
    config = parse_domain_mark_xml(domain.metadata(element, NS, libvirt.VIR_DOMAIN_AFFECT_CONFIG))
    assert live is not None and live.started is not None and live.started >= before - 1
    assert config is not None and config.started is None
    with pytest.raises(libvirt.libvirtError):
        domain.metadata(element, RUNTIME_NS, libvirt.VIR_DOMAIN_AFFECT_LIVE)


def test_uptime_of_a_domain_started_with_the_runtime_element(backend) -> None:
    """Domains started by earlier versions keep their start time in the runtime
    namespace; status still reads it there."""
    import libvirt

    from corral.backends.libvirt.metadata import RUNTIME_NS, RUNTIME_PREFIX, runtime_xml

    name = backend.define_domain(DOMAINS["direct-boot"])
    domain = backend.conn.lookupByName(name)
    domain.create()
    domain.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, runtime_xml(time.time() - 60),
                       RUNTIME_PREFIX, RUNTIME_NS, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    (row,) = backend.domain_stats("lab")
    assert row.uptime_s is not None and 59 <= row.uptime_s <= 65


def test_redefine_while_running_keeps_the_start_time(backend) -> None:
    name = backend.define_domain(DOMAINS["direct-boot"])
    backend.start(name)
    (first,) = backend.domain_stats("lab")
    time.sleep(0.2)
    backend.define_domain(spec(host("tiny1", memory_mib=64), direct_template()))
    (row,) = backend.domain_stats("lab")
    assert first.uptime_s is not None and row.uptime_s is not None
    assert row.uptime_s >= first.uptime_s


def test_console_output_of_a_domain_that_never_ran_is_empty(backend) -> None:
    name = backend.define_domain(DOMAINS["direct-boot"])
    assert backend.console_output(name) == ""
    argv = backend.console_command(name)
    assert argv[1:] == ["-c", "test:///default", "console", "--force", name]


def test_one_backend_serves_a_thread_pool(backend) -> None:
    from concurrent.futures import ThreadPoolExecutor

    specs = [spec(host(f"p{i}"), direct_template()) for i in range(24)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        names = list(pool.map(backend.define_domain, specs))
        list(pool.map(backend.start, names))
    rows = backend.domain_stats("lab")
    assert sorted(r.domain for r in rows) == sorted(names)
    assert all(r.state is DomainState.RUNNING for r in rows)
