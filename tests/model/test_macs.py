from corral.net.macs import MacRequest, assign_macs, derive_mac


def test_derived_macs_are_stable_unicast_qemu_macs() -> None:
    mac = derive_mac("italy", "uno", "eth0")
    assert mac == derive_mac("italy", "uno", "eth0")
    assert mac.startswith("52:54:00:")
    assert int(mac[:2], 16) & 1 == 0
    assert mac != derive_mac("italy", "uno", "eth1")
    assert mac != derive_mac("napoli", "uno", "eth0")


def test_assignment_keeps_given_macs_and_avoids_them() -> None:
    taken = derive_mac("p", "a", "eth0")
    macs = assign_macs("p", [MacRequest("a", "eth0"), MacRequest("b", "eth0", given=taken)])
    assert macs[("b", "eth0")] == taken
    assert macs[("a", "eth0")] == derive_mac("p", "a", "eth0", attempt=1)


def test_assignment_does_not_depend_on_request_order() -> None:
    requests = [MacRequest(f"h{i}", f"eth{j}") for i in range(50) for j in range(3)]
    forward = assign_macs("p", requests)
    backward = assign_macs("p", list(reversed(requests)))
    assert forward == backward
    assert len(set(forward.values())) == len(requests)
