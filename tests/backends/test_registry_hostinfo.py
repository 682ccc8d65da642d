"""Backend registry, host facts and virt type resolution."""

from __future__ import annotations

import pytest

import corral.backends as backends
from corral.backends import UnsupportedURIError, open_backend
from corral.backends.libvirt import hostinfo
from corral.backends.libvirt.backend import LibvirtBackend
from corral.backends.registry import driver_of
from corral.errors import BackendError

QEMU_CAPS = """<capabilities><host/>
  <guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/>{kvm}</arch></guest>
</capabilities>"""


def test_public_names_are_exported() -> None:
    assert sorted(backends.__all__) == backends.__all__
    for name in backends.__all__:
        assert hasattr(backends, name), name


@pytest.mark.parametrize(
    ("uri", "driver"),
    [("qemu:///system", "qemu"), ("qemu+ssh://h/system", "qemu"), ("test:///default", "test"),
     ("qemu+tls://h:16514/system", "qemu"), ("nonsense", "")],
)
def test_driver_of(uri: str, driver: str) -> None:
    assert driver_of(uri) == driver


def test_registry_gives_a_backend_bound_to_one_service_host() -> None:
    backend = open_backend("milano", "qemu+ssh://milano/system", "/srv/runs")
    assert isinstance(backend, LibvirtBackend)
    assert (backend.name, backend.uri, backend.runs_dir) == (
        "milano", "qemu+ssh://milano/system", "/srv/runs"
    )


def test_unknown_uri_is_a_typed_error_naming_the_host() -> None:
    with pytest.raises(UnsupportedURIError, match="service host 'vm1': no backend for URI 'vmwa"):
        open_backend("vm1", "vmwarews:///session")
    assert issubclass(UnsupportedURIError, BackendError)


def test_unreachable_host_is_a_backend_error_with_a_hint() -> None:
    backend = open_backend("far", "qemu+tcp://127.0.0.1:1/system")
    with pytest.raises(BackendError, match="cannot connect to service host 'far'") as caught:
        backend.host_info()
    assert "libvirtd" in (caught.value.hint or "")


def test_host_info_on_the_test_driver(backend) -> None:
    info = backend.host_info()
    assert info.hypervisor == "TEST" and info.cpus > 0 and info.memory_mib > 0
    assert info.libvirt_version.count(".") == 2
    assert info.virt_types == ("qemu",) and info.virt_type == "qemu"
    assert backend.capabilities().virt_types == frozenset({"qemu"})


def test_auto_prefers_kvm_where_offered() -> None:
    offered = hostinfo.virt_types(QEMU_CAPS.format(kvm="<domain type='kvm'/>"))
    assert offered == ("kvm", "qemu")
    assert hostinfo.resolve_virt_type("auto", offered, "local") == "kvm"
    assert hostinfo.resolve_virt_type("qemu", offered, "local") == "qemu"


def test_auto_is_qemu_without_kvm() -> None:
    offered = hostinfo.virt_types(QEMU_CAPS.format(kvm=""))
    assert hostinfo.resolve_virt_type("auto", offered, "local") == "qemu"
    with pytest.raises(BackendError, match=r"'local' cannot run kvm guests \(it offers: qemu\)"):
        hostinfo.resolve_virt_type("kvm", offered, "local")


@pytest.mark.parametrize("kind", ["xen", "vmware", "uml"])
def test_kinds_this_host_cannot_run_are_clear_errors(backend, kind: str) -> None:
    with pytest.raises(BackendError, match=f"service host 'local' cannot run {kind} guests"):
        backend.resolve_virt_type(kind)


def test_containers_where_none_run_are_refused_with_the_reason(backend) -> None:
    with pytest.raises(BackendError, match="cannot run lxc hosts: service host 'local' is not "
                       "this machine's qemu:///system"):
        backend.resolve_virt_type("lxc")


def test_node_statistics_are_sampled_around_the_work_done_meanwhile() -> None:
    """The CPU% of a status host row costs no wait beyond the survey it samples
    around, but never samples less than the shortest sample."""
    import time

    import libvirt

    conn = libvirt.open("test:///default")
    try:
        began = time.monotonic()
        answer, node = hostinfo.node_stats_around(conn, "t", lambda: "read", min_sample_s=0.2)
        quick = time.monotonic() - began
        began = time.monotonic()
        _, _ = hostinfo.node_stats_around(conn, "t", lambda: time.sleep(0.4), min_sample_s=0.2)
        slow = time.monotonic() - began
    finally:
        conn.close()
    assert answer == "read"
    assert node.cpus > 0 and node.memory_mib > 0 and node.uptime_s
    assert 0.2 <= quick < 0.35, quick
    assert 0.4 <= slow < 0.55, slow  # no sample on top of the work


def test_a_kept_sample_measures_the_next_reading_without_a_wait() -> None:
    """A backend read again and again (the server's shared status) measures each
    CPU% from the sample the reading before took, when it is old enough: no
    wait; one too young or too old is not used, so the wait comes back."""
    import time

    import libvirt

    conn = libvirt.open("qemu:///system")
    samples = hostinfo.CpuSamples()
    try:
        hostinfo.node_stats_around(conn, "t", lambda: None, samples=samples)
        assert samples.usable(time.monotonic()) is None  # younger than the shortest sample
        time.sleep(hostinfo.CPU_SAMPLE_MIN_S)
        began = time.monotonic()
        _, node = hostinfo.node_stats_around(conn, "t", lambda: None, samples=samples)
        assert time.monotonic() - began < hostinfo.CPU_SAMPLE_MIN_S / 2
        assert node.cpu_percent is not None and 0 <= node.cpu_percent <= 100
        assert samples.usable(time.monotonic() + hostinfo.CPU_SAMPLE_KEPT_S + 1) is None
    finally:
        conn.close()


def test_the_newest_sample_old_enough_is_used() -> None:
    """Readings begun every half second end about a quarter second apart: the
    sample just before is then too young, and the one before it is used."""
    samples = hostinfo.CpuSamples()
    for taken, user in ((10.0, 1), (10.3, 2), (10.55, 3)):
        samples.keep(taken, {"user": user})
    samples.keep(10.2, {"user": 99})  # older than the newest kept: not kept
    assert samples.usable(10.6) == {"user": 2}
    assert samples.usable(10.8) == {"user": 3}
    assert samples.usable(10.1) is None
    assert samples.usable(10.55 + hostinfo.CPU_SAMPLE_KEPT_S + 0.1) is None
    many = hostinfo.CpuSamples(kept=2)
    for taken in (1.0, 2.0, 3.0):
        many.keep(taken, {"user": int(taken)})
    assert many.usable(3.1) == {"user": 2}  # 1.0 is no longer kept
    assert many.usable(2.1) is None


def test_an_opener_reads_the_installed_entry_points_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A session opens every service host through one opener: the entry points
    (about 10 ms of the interpreter to read) are read for the first only."""
    import corral.backends.registry as registry

    reads: list[str] = []
    real = registry.entry_points

    def counted(**kwargs: str) -> object:
        reads.append(kwargs["group"])
        return real(**kwargs)

    monkeypatch.setattr(registry, "entry_points", counted)
    opener = registry.BackendOpener()
    opened = [opener.open(f"h{i}", "test:///default") for i in range(3)]
    assert [type(b).__name__ for b in opened] == ["LibvirtBackend"] * 3
    assert reads == [registry.ENTRY_POINT_GROUP]
    with pytest.raises(UnsupportedURIError, match="no backend for URI 'vbox:///'"):
        opener.open("odd", "vbox:///")
    assert len(reads) == 1
