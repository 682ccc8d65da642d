"""Golden XML for domains and networks; each one is also defined on the test driver
and observed back with its metadata.

Regenerate the golden files with ``CORRAL_REGEN_GOLDEN=1 pytest tests/backends``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree
from scenarios import DOMAINS, NETWORKS, PROJECT, backing_of, console_log_of

from corral.backends import DomainState
from corral.backends.libvirt import domain_xml, names, network_xml
from corral.model import SwitchMode

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("CORRAL_REGEN_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with CORRAL_REGEN_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from its golden file"


@pytest.mark.parametrize("scenario", sorted(DOMAINS))
def test_domain_xml_matches_golden(scenario: str) -> None:
    built = domain_xml.build_domain(
        DOMAINS[scenario], console_log=console_log_of(scenario), backing=backing_of(scenario)
    )
    text = domain_xml.to_string(built)
    check_golden(f"domain-{scenario}.xml", text)


@pytest.mark.parametrize("scenario", sorted(NETWORKS))
def test_network_xml_matches_golden(scenario: str) -> None:
    switch, leases = NETWORKS[scenario]
    text = network_xml.to_string(network_xml.build_network(PROJECT, switch, leases))
    check_golden(f"network-{scenario}.xml", text)


@pytest.mark.parametrize("scenario", sorted(DOMAINS))
def test_golden_domain_defines_and_observes_back(backend, scenario: str) -> None:
    spec = DOMAINS[scenario]
    name = backend.define_domain(spec)
    assert name == f"{PROJECT}-{spec.host.name}"
    (seen,) = backend.observe(PROJECT).domains
    assert (seen.name, seen.project, seen.host) == (name, PROJECT, spec.host.name)
    assert seen.model_hash == spec.model_hash
    assert seen.template == spec.boot.template
    assert seen.state is DomainState.SHUTOFF
    assert seen.model == spec.host
    xml = etree.fromstring(backend.describe(name).encode())
    assert xml.get("type") == spec.virt_type
    assert xml.findtext("currentMemory") == str(spec.host.memory_mib * 1024)


@pytest.mark.parametrize("scenario", sorted(NETWORKS))
def test_golden_network_defines_and_observes_back(backend, scenario: str) -> None:
    switch, leases = NETWORKS[scenario]
    name = backend.ensure_network(PROJECT, switch, leases)
    assert name == f"{PROJECT}-{switch.name}"
    (seen,) = backend.observe(PROJECT).networks
    assert (seen.project, seen.switch) == (PROJECT, switch.name)
    assert seen.model_hash == switch.model_hash()
    assert seen.active
    assert seen.model == switch
    if switch.mode is SwitchMode.BRIDGE:
        assert seen.bridge == switch.bridge
    else:
        assert seen.bridge == names.bridge_name(PROJECT, switch.name)
        assert seen.bridge.startswith("crl-") and len(seen.bridge) <= 15


def test_observe_ignores_objects_corral_did_not_create(backend) -> None:
    # The test driver starts with a domain "test" and a network "default".
    observed = backend.observe()
    assert observed.domains == () and observed.networks == () and observed.volumes == ()
    backend.define_domain(DOMAINS["disk-plain"])
    assert [d.name for d in backend.observe().domains] == ["lab-web"]
    assert backend.observe("other").domains == ()
