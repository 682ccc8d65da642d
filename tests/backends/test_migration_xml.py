"""The XML a move writes is valid against libvirt's schemas: the sized volume a
cold copy is streamed into, and a domain's XML retargeted for the target."""

from __future__ import annotations

import libvirt
from xmlvalid import validate

from corral.backends.libvirt import migration


def test_the_volume_a_copy_fills_is_valid_and_sparse() -> None:
    xml = migration._sized_volume_xml("web.qcow2", 6_946_816)
    validate(xml, "storagevol", "cold copy volume")
    assert "<allocation unit=\"bytes\">0</allocation>" in xml


def test_a_retargeted_domain_is_valid() -> None:
    conn = libvirt.open("test:///default")
    try:
        domain = conn.lookupByName("test")
        xml = migration.retarget(domain.XMLDesc(0), conn, conn, "test")
    finally:
        conn.close()
    validate(xml, "domain", "retargeted domain")
