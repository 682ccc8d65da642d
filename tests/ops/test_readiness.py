"""Readiness: each guest ready, or named with the reason seen."""

from corral.model import Host, Interface, WaitKind, WaitSpec
from corral.ops.readiness import Observation, Target, assess, settle

MAC = "52:54:00:aa:bb:01"


def _target(kind: WaitKind = WaitKind.AUTO, timeout: int = 5, address: str = "dhcp") -> Target:
    nic = Interface(name="eth0", switch="lan", address=address, mac=MAC)
    host = Host(name="web", interfaces=(nic,), wait=WaitSpec(kind=kind, timeout_s=timeout))
    return Target(host, "lab-web")


def test_console_signal_for_this_host_is_ready():
    seen = Observation("running", "boot...\ncorral-ready web\n", {})
    assert assess(_target(), seen).ready


def test_signal_for_another_host_is_not_ready():
    seen = Observation("running", "corral-ready db\n", {})
    verdict = assess(_target(), seen)
    assert not verdict.ready
    assert "console last printed: 'corral-ready db'" in verdict.reason


def test_kernel_panic_is_final_with_the_text():
    console = "[ 1.3] Kernel panic - not syncing: VFS: Unable to mount root fs\n"
    verdict = assess(_target(), Observation("running", console, {}))
    assert verdict.final and not verdict.ready
    assert "Kernel panic - not syncing" in verdict.reason


def test_dhcp_wait_names_the_missing_lease():
    verdict = assess(_target(WaitKind.DHCP), Observation("running", "", {}))
    assert verdict.reason == f"no DHCP lease for {MAC}"
    assert assess(_target(WaitKind.DHCP), Observation("running", "", {MAC: ["10.0.0.9"]})).ready


def test_auto_falls_back_to_leases_when_console_unreadable():
    assert not assess(_target(), Observation("running", None, {})).ready
    assert assess(_target(), Observation("running", None, {MAC: ["10.0.0.9"]})).ready


def test_crashed_domain_is_final():
    verdict = assess(_target(), Observation("crashed", "", {}))
    assert verdict.final and verdict.reason == "domain is crashed"


def test_silent_console():
    assert assess(_target(WaitKind.CONSOLE), Observation("running", "", {})).reason == (
        "no console output"
    )


def test_none_is_ready_at_once():
    assert assess(_target(WaitKind.NONE), Observation("shutoff", None, {})).ready


def test_settle_waits_until_the_guests_own_timeout() -> None:
    target = _target(WaitKind.DHCP, timeout=5)
    silent = Observation("running", "", {})
    assert settle(target, silent, 4.9) is None
    verdict = settle(target, silent, 5.0)
    assert verdict is not None and not verdict.ready and verdict.final
    assert verdict.reason == f"not ready after 5 s: no DHCP lease for {MAC}"


def test_settle_ends_at_once_when_ready_hopeless_or_gone() -> None:
    assert settle(_target(), Observation("running", "corral-ready web\n", {}), 0).ready
    assert settle(_target(), Observation("crashed", "", {}), 0).final
    gone = settle(_target(), None, 0)
    assert gone is not None and gone.reason == "domain not found" and not gone.ready
