"""The placement scheduler (corral/plan/placement.py): a pure function of its inputs."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from corral.plan.placement import (
    Limits,
    Load,
    Need,
    PlacementError,
    Request,
    ServiceHostState,
    place,
)

GIB = 1024


def machine(name: str, *, cpus: int = 8, memory: int = 16 * GIB, others: Load = Load(),
            limits: Limits = Limits(), **kw: object) -> ServiceHostState:
    return ServiceHostState(name, limits, others=others, now=others, cpus=cpus,
                            memory_mib=memory, **kw)  # type: ignore[arg-type]


def needs(count: int, memory: int = 512, vcpus: int = 1, prefix: str = "n") -> list[Need]:
    return [Need(f"{prefix}{i}", memory, vcpus) for i in range(1, count + 1)]


THREE = [machine("h1"), machine("h2"), machine("h3")]


def test_spread_puts_equal_hosts_evenly_round_the_service_hosts() -> None:
    chosen = place(Request(needs(6), {}, THREE))
    assert Counter(chosen.values()) == {"h1": 2, "h2": 2, "h3": 2}
    assert chosen == {"n1": "h1", "n2": "h2", "n3": "h3", "n4": "h1", "n5": "h2", "n6": "h3"}


def test_spread_prefers_fewest_corral_vms_then_most_unallocated_memory() -> None:
    busy = machine("a", others=Load(3, 1 * GIB, 3))
    roomy = machine("b", memory=32 * GIB, others=Load(1, 0, 1))
    small = machine("c", memory=8 * GIB, others=Load(1, 0, 1))
    assert place(Request(needs(1), {}, [busy, roomy, small])) == {"n1": "b"}


def test_pack_fills_the_first_service_host_by_name_before_the_next() -> None:
    hosts = [machine("h2", memory=2 * GIB), machine("h1", memory=2 * GIB)]
    chosen = place(Request(needs(5), {}, hosts, policy="pack"))
    assert chosen == {"n1": "h1", "n2": "h1", "n3": "h1", "n4": "h1", "n5": "h2"}


def test_ties_are_broken_by_name_whatever_the_input_order() -> None:
    results = {
        tuple(sorted(place(Request(list(order_needs), {}, list(order_hosts))).items()))
        for order_hosts in itertools.permutations(THREE)
        for order_needs in itertools.permutations(needs(4))
    }
    assert len(results) == 1


def test_largest_hosts_are_placed_first() -> None:
    hosts = [machine("h1", memory=3 * GIB), machine("h2", memory=2 * GIB)]
    wanted = [Need("small", 1 * GIB, 1), Need("big", 2 * GIB, 1), Need("mid", 2 * GIB, 1)]
    # big first (name order among equals), then mid, then small where room is left
    assert place(Request(wanted, {}, hosts)) == {"big": "h1", "mid": "h2", "small": "h1"}


def test_fixed_hosts_stay_whatever_the_capacity() -> None:
    full = machine("h1", memory=1 * GIB, others=Load(9, 1 * GIB, 9))
    chosen = place(Request(needs(2), {"n1": "h1"}, [full, machine("h2")]))
    assert chosen == {"n1": "h1", "n2": "h2"}


def test_fixed_hosts_count_where_they_are() -> None:
    chosen = place(Request(needs(3), {"n1": "h1", "n2": "h1"}, THREE[:2]))
    assert chosen["n3"] == "h2"


@pytest.mark.parametrize(
    ("limits", "lack"),
    [
        (Limits(max_vms=2), "h1 max_vms 2 reached"),
        (Limits(max_memory_mib=1200), "h1 has 176 MiB left of max_memory 1200 MiB"),
        (Limits(max_vcpus=2), "h1 has 0 vCPUs left of max_vcpus 2"),
    ],
)
def test_site_limits_are_kept(limits: Limits, lack: str) -> None:
    hosts = [machine("h1", limits=limits), machine("h2", memory=1 * GIB)]
    chosen = place(Request(needs(2, vcpus=1), {}, hosts, policy="pack"))
    assert chosen == {"n1": "h1", "n2": "h1"}
    with pytest.raises(PlacementError) as caught:
        place(Request(needs(5, vcpus=1), {}, hosts, policy="pack"))
    assert lack in caught.value.message


def test_what_does_not_fit_says_which_hosts_lack_what() -> None:
    hosts = [
        machine("h1", memory=1 * GIB, others=Load(1, 724, 1)),
        machine("h2", limits=Limits(max_vms=4), others=Load(4, 512, 4)),
        machine("h3", cpus=2),
    ]
    with pytest.raises(PlacementError) as caught:
        place(Request([Need("db", 512, 4), Need("web", 128, 1)], {}, hosts))
    message = caught.value.message
    assert message.splitlines() == [
        "the project does not fit on the service hosts:",
        "  host db (needs 512 MiB, 4 vCPUs): h1 has 300 MiB not taken by Corral VMs; "
        "h2 max_vms 4 reached; h3 has 2 CPUs",
    ]
    assert caught.value.outcome.exit_code == 4


def test_a_service_host_that_did_not_answer_is_skipped_and_named_when_nothing_fits() -> None:
    silent = ServiceHostState("h0", unreachable="no answer within 30 s")
    assert place(Request(needs(2), {}, [silent, machine("h1")])) == {"n1": "h1", "n2": "h1"}
    with pytest.raises(PlacementError, match=r"h0 did not answer \(no answer within 30 s\)"):
        place(Request(needs(1), {}, [silent, machine("h1", memory=100)]))


def test_only_schedulable_service_hosts_are_chosen() -> None:
    hosts = [machine("local", schedulable=False), machine("h1")]
    assert set(place(Request(needs(3), {}, hosts)).values()) == {"h1"}
    with pytest.raises(PlacementError, match="no service host may be chosen"):
        place(Request(needs(1), {}, [machine("local", schedulable=False)]))


def test_hosts_with_the_same_vnc_display_go_to_different_service_hosts() -> None:
    wanted = [Need("a", 512, 1, vncdisplay=3), Need("b", 512, 1, vncdisplay=3)]
    assert place(Request(wanted, {}, THREE[:2], policy="pack")) == {"a": "h1", "b": "h2"}
    with pytest.raises(PlacementError, match="vncdisplay 3 taken by host a"):
        place(Request(wanted, {"a": "h1"}, THREE[:1]))


def test_a_limit_the_fixed_hosts_newly_exceed_is_an_error_naming_host_and_limit() -> None:
    capped = machine("h1", limits=Limits(max_vcpus=4, max_vms=2, max_memory_mib=1024))
    with pytest.raises(PlacementError) as caught:
        place(Request(needs(3, vcpus=2), {"n1": "h1", "n2": "h1", "n3": "h1"}, [capped]))
    assert caught.value.message.splitlines()[1:] == [
        "  service host h1: max_vms 2 exceeded: it would carry 3 Corral VMs "
        "(this project's hosts there: n1, n2, n3)",
        "  service host h1: max_memory 1024 MiB exceeded: it would carry 1536 MiB "
        "(this project's hosts there: n1, n2, n3)",
        "  service host h1: max_vcpus 4 exceeded: it would carry 6 vCPUs "
        "(this project's hosts there: n1, n2, n3)",
    ]


def test_a_limit_already_exceeded_is_not_blamed_on_a_plan_that_adds_nothing() -> None:
    lowered = ServiceHostState("h1", Limits(max_vms=1), now=Load(2, 1024, 2), cpus=8,
                               memory_mib=16 * GIB)
    assert place(Request(needs(2), {"n1": "h1", "n2": "h1"}, [lowered])) == {
        "n1": "h1", "n2": "h1"}
