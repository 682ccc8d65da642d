"""The domain XML of a single VM's archive: valid, self-contained, never Corral's."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from scenarios import DOMAINS, backing_of, console_log_of
from xmlvalid import validate

from corral.backends.libvirt import domain_xml
from corral.images.standalone_xml import standalone_xml

ARCHIVE = Path("/srv/archives/lab-tiny1/hosts/tiny1")


def _built(scenario: str) -> str:
    root = domain_xml.build_domain(DOMAINS[scenario], console_log=console_log_of(scenario),
                                   backing=backing_of(scenario))
    return domain_xml.to_string(root)


def _files(xml: str) -> dict[str, tuple[Path, str]]:
    """Every file the domain names, mapped into the archive."""
    root = etree.fromstring(xml.encode())
    found = {}
    for source in root.iterfind("devices/disk/source"):
        name = Path(source.get("file", "")).name
        found[name] = (ARCHIVE / name, "raw" if name.endswith(".iso") else "qcow2")
    for tag in ("os/kernel", "os/initrd"):
        element = root.find(tag)
        if element is not None and element.text:
            found[Path(element.text).name] = (ARCHIVE / Path(element.text).name, "raw")
    return found


@pytest.mark.parametrize("scenario", ["direct-boot", "disk-plain", "disks-boot-order"])
def test_standalone_xml_names_only_archive_files_and_is_valid(scenario: str) -> None:
    xml = _built(scenario)
    rewritten = standalone_xml(xml, "lab-x-standalone", _files(xml))
    validate(rewritten, "domain", f"standalone {scenario}")
    root = etree.fromstring(rewritten.encode())
    assert root.findtext("name") == "lab-x-standalone"
    assert root.find("uuid") is None
    assert "corral.dev" not in rewritten  # Corral never takes it for its own
    paths = [s.get("file") for s in root.iterfind("devices/disk/source")]
    paths += [root.findtext(t) for t in ("os/kernel", "os/initrd") if root.find(t) is not None]
    assert paths and all(str(p).startswith(str(ARCHIVE)) for p in paths)
    for disk in root.iterfind("devices/disk"):
        assert disk.find("backingStore") is not None and len(disk.find("backingStore")) == 0
        expected = "raw" if disk.find("source").get("file").endswith(".iso") else "qcow2"
        assert disk.find("driver").get("type") == expected
    assert {n.get("type") for n in root.iterfind("devices/interface")} <= {"user"}
    assert root.find("devices/serial/log") is None


def test_a_file_missing_from_the_archive_is_an_error() -> None:
    xml = _built("direct-boot")
    files = {k: v for k, v in _files(xml).items() if not k.endswith("vmlinuz")}
    with pytest.raises(ValueError, match="the archive does not hold"):
        standalone_xml(xml, "x", files)
