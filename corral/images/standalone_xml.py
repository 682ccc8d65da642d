"""A domain XML that boots one exported VM without Corral (``corral export -h``).

It starts from libvirt's own XML of the host's domain and keeps everything
that describes the machine (memory, vCPUs, devices, MACs), but:

* its name is ``NAME`` given by the caller and it has no UUID (libvirt makes
  one), so it never passes for the project's domain;
* Corral's marks (``<metadata>`` in Corral's namespaces) are gone, so Corral
  never takes it for one of its own;
* every disk, the seed ISO, the kernel and the initrd name the archive's
  files by absolute path; the root disk stands alone (``<backingStore/>``);
* NICs use QEMU's user-mode network (the project's switches do not exist
  where the archive goes); their MACs stay;
* the serial console logs nowhere (the log was a file in Corral's pool).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lxml import etree

CORRAL_NAMESPACES = ("https://corral.dev/xmlns/1", "https://corral.dev/xmlns/1/runtime")


def standalone_xml(xml: str, name: str, files: Mapping[str, tuple[Path, str]]) -> str:
    """``xml`` (a domain's inactive XML) rewritten as described in the module;
    ``files`` maps the base name of each file the domain used (run copy, extra
    disks, seed, kernel, initrd) to the archive's file that replaces it and that
    file's format. A file the domain uses that ``files`` lacks is an error: the
    archive would not boot."""
    root = etree.fromstring(xml.encode())
    named = root.find("name")
    if named is None:
        raise ValueError("the domain XML has no <name>")
    named.text = name
    for uuid in root.findall("uuid"):
        root.remove(uuid)
    _drop_marks(root)
    for disk in root.iterfind("devices/disk"):
        source = disk.find("source")
        if source is None or not source.get("file"):
            continue
        replacement, fmt = _replacement(files, source.get("file", ""))
        source.set("file", str(replacement))
        for store in disk.findall("backingStore"):
            disk.remove(store)
        driver = disk.find("driver")
        if driver is not None:
            driver.set("type", fmt)
        # the files stand alone: say so, or libvirt would probe for a backing file
        source.addnext(etree.Element("backingStore"))
    for tag in ("os/kernel", "os/initrd"):
        element = root.find(tag)
        if element is not None and element.text:
            element.text = str(_replacement(files, element.text)[0])
    for nic in root.iterfind("devices/interface"):
        nic.set("type", "user")
        for child in list(nic):
            if child.tag not in ("mac", "model", "address", "alias", "rom", "boot"):
                nic.remove(child)
    for device in root.findall("devices/serial") + root.findall("devices/console"):
        for log in device.findall("log"):
            device.remove(log)
    return etree.tostring(root, encoding="unicode", pretty_print=True)


def _replacement(files: Mapping[str, tuple[Path, str]], path: str) -> tuple[Path, str]:
    base = Path(path).name
    if base not in files:
        raise ValueError(f"the domain uses {path}, which the archive does not hold")
    return files[base]


def _drop_marks(root: etree._Element) -> None:
    metadata = root.find("metadata")
    if metadata is None:
        return
    for child in list(metadata):
        namespace = etree.QName(child).namespace
        if namespace in CORRAL_NAMESPACES:
            metadata.remove(child)
    if len(metadata) == 0:
        root.remove(metadata)
