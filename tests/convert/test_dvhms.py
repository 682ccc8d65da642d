"""DVHMS XML into a Corral project: the example printed in the DVHMS paper,
verbatim, converts into a project ``corral validate`` accepts and ``show --json``
gives its hosts, MACs and addresses; variants warn at their source line."""

from __future__ import annotations

import json
from pathlib import Path

import convert_helpers
import pytest
from convert_helpers import corral

from corral.config import parse_site_config
from corral.convert import dvhms
from corral.errors import SourceErrors
from corral.ops.convert import convert_file
from corral.ops.projects import load_source
from corral.ops.source import ProjectSource

# The example printed in the DVHMS paper (one host server, five run copies of two
# masters), with the blank line the document prints before it.
PAPER = """
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE NIFTICONF SYSTEM "masterconf.dtd" [
<!ENTITY br "
">
]>
<VHMS DHCP="10.0.0.251">
  <IMGLIST>
    <IMG ID="rh6.2">
      <DESCR>A RedHat 6.2 image</DESCR>
      <LOC URL="file://var/vhms/mir/redhat62_master.tar"></LOC>
    </IMG>
    <IMG ID="man8.1">
      <DESCR>Mandrake8.1 image</DESCR>
      <LOC URL="file://var/vhms/mir/mandrake81_master.tar"></LOC>
    </IMG>
  </IMGLIST>
  <SRVLIST>
    <SRV ID="hs1" IP="10.0.0.1" MIR="/var/vhms/mir" RUN="/var/vhms/run">
      <VHI ID="rh6.2">
        <VHD RID="one" MAC="00:50:56:00:00:01" IP="10.0.0.1"></VHD>
        <VHD RID="two" MAC="00:50:56:00:00:02" IP="10.0.0.2"></VHD>
      </VHI>
      <VHI ID="man8.1">
        <VHD RID="three" MAC="00:50:56:00:00:03" IP="10.0.0.3"></VHD>
        <VHD RID="four" MAC="00:50:56:00:00:04" IP="10.0.0.4"></VHD>
        <VHD RID="five" MAC="00:50:56:00:00:05" IP="10.0.0.5"></VHD>
      </VHI>
    </SRV>
  </SRVLIST>
</VHMS>
"""

EXPECTED = {
    "one": ("rh6.2", "00:50:56:00:00:01", "10.0.0.1"),
    "two": ("rh6.2", "00:50:56:00:00:02", "10.0.0.2"),
    "three": ("man8.1", "00:50:56:00:00:03", "10.0.0.3"),
    "four": ("man8.1", "00:50:56:00:00:04", "10.0.0.4"),
    "five": ("man8.1", "00:50:56:00:00:05", "10.0.0.5"),
}


def source(tmp_path: Path, text: str, name: str = "vhms.xml") -> Path:
    return convert_helpers.source(tmp_path, text, name)


def messages(path: Path, fmt: str | None = None) -> list[tuple[int, str]]:
    return [(w.line, w.message) for w in convert_file(path, fmt).warnings]


def test_the_paper_example_loads_with_its_service_hosts(tmp_path: Path) -> None:
    result = convert_file(source(tmp_path, PAPER))
    assert result.format == "dvhms"
    assert result.project.startswith("# Converted by `corral convert` from the DVHMS")
    assert result.site_config is not None
    site = parse_site_config(result.site_config, tmp_path / "site.toml")
    assert site.service_hosts["hs1"].uri == "qemu+ssh://root@10.0.0.1/system"
    project = load_source(ProjectSource(result.project, "vhms.corral", tmp_path), site)
    assert project.name == "vhms"
    assert project.switches["lan"].address == "10.0.0.251/24"
    assert set(project.hosts) == set(EXPECTED)
    for name, (template, mac, address) in EXPECTED.items():
        host = project.hosts[name]
        assert (host.template, host.service_host) == (template, "hs1")
        [nic] = host.interfaces
        assert (nic.switch, nic.mac, nic.address) == ("lan", mac, address)
    assert "corral template add rh6.2 IMAGE" in result.project
    assert "file://var/vhms/mir/mandrake81_master.tar" in result.project


def test_the_paper_example_warns_what_it_cannot_carry(tmp_path: Path) -> None:
    found = messages(source(tmp_path, PAPER))
    assert [line for line, _ in found] == [19, 19, 21]
    assert "MIR='/var/vhms/mir' is not carried over" in found[0][1]
    assert "RUN='/var/vhms/run'" in found[1][1]
    assert "one's IP 10.0.0.1 is also the address of host server hs1" in found[2][1]


def test_cli_writes_project_and_fragment_that_show_reads(tmp_path: Path) -> None:
    path = source(tmp_path, PAPER)
    out, toml = tmp_path / "lab.corral", tmp_path / "hosts.toml"
    done = corral("convert", str(path), "-o", str(out), "--site-config", str(toml))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"{path}:19: warning: SRV hs1 MIR=" in done.stderr
    assert corral("--config", str(toml), "validate", str(out)).returncode == 0
    shown = corral("--config", str(toml), "show", "--json", str(out))
    assert shown.returncode == 0, shown.stderr
    hosts = json.loads(shown.stdout)["hosts"]
    for name, (template, mac, address) in EXPECTED.items():
        [nic] = hosts[name]["interfaces"]
        assert (hosts[name]["template"], nic["mac"], nic["address"]) == (template, mac, address)
        assert hosts[name]["service_host"] == "hs1"


def test_cli_prints_to_stdout_and_notes_the_fragment(tmp_path: Path) -> None:
    done = corral("convert", "--from", "dvhms", str(source(tmp_path, PAPER)))
    assert done.returncode == 0, done.stderr
    assert "host five {" in done.stdout
    assert "--site-config FILE" in done.stderr


def test_cli_json(tmp_path: Path) -> None:
    done = corral("convert", "--json", str(source(tmp_path, PAPER)))
    data = json.loads(done.stdout)
    assert data["format"] == "dvhms"
    assert data["site_config"].count("[service_hosts.") == 1
    assert {w["line"] for w in data["warnings"]} == {19, 21}


VARIANT = """<?xml version="1.0"?>
<!-- a lab   with comments -->
<VHMS   DHCP = "192.168.7.1" NAME="x">

  <IMGLIST>
    <IMG ID="deb 3"><LOC URL="file:///m/deb3.tar"/></IMG>
  </IMGLIST>
  <SRVLIST>
    <SRV ID="hs1" IP="192.168.7.10">
      <VHI ID="deb 3">
        <!-- run copies -->
        <VHD RID="web_1" MAC="00:50:56:00:00:0A" IP="192.168.7.20"/>
        <VHD RID="db" MAC="00:50:56:00:00:0a" IP="192.168.7.20"/>
        <VHD RID="far" IP="10.9.9.9"/>
        <VHD RID="nomac"/>
      </VHI>
      <VHI ID="ghost"><VHD RID="g1" MAC="nonsense"/></VHI>
    </SRV>
    <SRV ID="hs2" IP="192.168.7.11"/>
  </SRVLIST>
</VHMS>
"""


def test_variant_warns_each_contradiction_at_its_line(tmp_path: Path) -> None:
    path = source(tmp_path, VARIANT, "my lab.xml")
    result = convert_file(path)
    found = [(w.line, w.message) for w in result.warnings]
    assert (3, "VHMS attribute NAME is not carried over") in found
    assert (12, "VHD 'web_1' becomes host web-1") in found
    assert any(line == 13 and "MAC 00:50:56:00:00:0a of db is also web-1's" in m
               for line, m in found)
    assert any(line == 13 and "IP 192.168.7.20 is also web-1's" in m for line, m in found)
    assert any(line == 14 and "outside the DHCP server's network" in m for line, m in found)
    assert any(line == 17 and "VHI 'ghost' names no IMG" in m for line, m in found)
    assert any(line == 17 and "'nonsense' is not a MAC address" in m for line, m in found)
    assert result.site_config is not None and "[service_hosts.hs2]" in result.site_config
    project = load_source(ProjectSource(result.project, "my-lab.corral", tmp_path),
                          parse_site_config(result.site_config, tmp_path / "s.toml"))
    assert project.name == "my-lab"
    assert project.hosts["web-1"].template == "deb-3"
    assert project.hosts["web-1"].interfaces[0].mac == "00:50:56:00:00:0a"
    assert project.hosts["db"].interfaces[0].address == "dhcp"
    assert project.hosts["nomac"].interfaces[0].address == "dhcp"
    assert project.hosts["g1"].template == "ghost"


def test_without_dhcp_addresses_are_static_with_a_netmask(tmp_path: Path) -> None:
    text = ('<VHMS><SRVLIST><SRV ID="a" IP="h.example"><VHI ID="m">'
            '<VHD RID="x" IP="10.1.2.3"/></VHI></SRV></SRVLIST></VHMS>')
    result = convert_file(source(tmp_path, text))
    assert [w.line for w in result.warnings] == [1, 1]
    project = load_source(ProjectSource(result.project, "v.corral", tmp_path),
                          parse_site_config(result.site_config or "", tmp_path / "s.toml"))
    [nic] = project.hosts["x"].interfaces
    assert (nic.address, nic.netmask) == ("10.1.2.3", "255.255.255.0")


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("<VHMS>\n<IMGLIST>\n</VHMS>\n", 3, "not well-formed DVHMS XML"),
    ("\n\n<?xml version='1.0'?>\n<OTHER/>\n", 4, "root element is VHMS, not OTHER"),
])
def test_bad_xml_is_one_positioned_error(tmp_path: Path, text: str, line: int,
                                         fragment: str) -> None:
    path = source(tmp_path, text)
    with pytest.raises(SourceErrors) as caught:
        convert_file(path, "dvhms")
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.span.file, diagnostic.span.line) == (str(path), line)
    assert fragment in diagnostic.message
    done = corral("convert", "--from", "dvhms", str(path))
    assert done.returncode == 1
    assert f"{path}:{line}:1: error:" in done.stderr
    assert "Traceback" not in done.stderr


def test_entities_are_not_expanded(tmp_path: Path) -> None:
    text = ('<!DOCTYPE VHMS [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
            '<VHMS><IMGLIST><IMG ID="a"><DESCR>&x;</DESCR></IMG></IMGLIST></VHMS>')
    result = convert_file(source(tmp_path, text))
    assert "root:" not in result.project


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    path = source(tmp_path, "just some text\n", "notes.txt")
    done = corral("convert", str(path))
    assert done.returncode == 1
    assert f"{path}:1:1: error: cannot tell the format" in done.stderr
    assert corral("convert", "--from", "ini", str(path)).returncode == 64


def test_looks_like() -> None:
    assert dvhms.looks_like("\n  <?xml version='1.0'?>\n<VHMS/>")
    assert not dvhms.looks_like("!xen.virtualmachines mADD(a)")


def test_a_project_corral_refuses_is_reported_as_a_bug(tmp_path: Path) -> None:
    from corral.convert.result import Conversion
    from corral.ops.convert import ConversionFailed, check

    broken = Conversion("dvhms", "global { project p }\nhost a { memory lots }\n")
    with pytest.raises(ConversionFailed, match="a bug of the converter"):
        check(broken, tmp_path / "p.corral")
    assert ConversionFailed("x").exit_code == 70


@pytest.mark.parametrize("dhcp", ["10.0.0.0", "10.0.0.255"])
def test_a_dhcp_server_on_a_network_or_broadcast_address_warns(tmp_path: Path,
                                                               dhcp: str) -> None:
    text = PAPER.replace('DHCP="10.0.0.251"', f'DHCP="{dhcp}"').replace(
        'IP="10.0.0.5"', 'IP="10.0.0.255"')
    result = convert_file(source(tmp_path, text))
    found = [(w.line, w.message) for w in result.warnings]
    assert any(line == 7 and f"DHCP {dhcp} is the network or broadcast" in m
               for line, m in found)
    assert any(line == 27 and "10.0.0.255 is the network or broadcast" in m
               for line, m in found)
    assert "switch lan {}" in result.project


def test_the_source_is_never_overwritten(tmp_path: Path) -> None:
    path = source(tmp_path, PAPER)
    done = corral("convert", str(path), "-o", str(path))
    assert done.returncode == 7 and "is the file being converted" in done.stderr
    assert path.read_text() == PAPER


def test_run_copies_beyond_a_slash_24_widen_the_assumed_network(tmp_path: Path) -> None:
    copies = "".join(f'<VHD RID="c{i}" MAC="00:50:56:00:{i // 256:02x}:{i % 256:02x}" '
                     f'IP="10.0.{i // 250}.{i % 250 + 1}"/>' for i in range(600))
    far = '<VHD RID="far" IP="10.9.0.5"/>'  # outside any /16 around the server: not counted
    text = (f'<VHMS DHCP="10.0.0.251"><SRVLIST><SRV ID="a" IP="192.168.1.1"><VHI ID="m">'
            f"{copies}{far}</VHI></SRV></SRVLIST></VHMS>")
    result = convert_file(source(tmp_path, text))
    messages = [w.message for w in result.warnings]
    assert ("the run copies' addresses do not fit a /24 around the DHCP server: its network "
            "is assumed 10.0.0.0/22, the narrowest that holds them") in messages
    assert sum("outside the DHCP server's network" in m for m in messages) == 1  # far alone
    project = load_source(ProjectSource(result.project, "v.corral", tmp_path),
                          parse_site_config(result.site_config or "", tmp_path / "s.toml"))
    assert project.switches["lan"].address == "10.0.0.251/22"
    assert project.hosts["c599"].interfaces[0].address == "10.0.2.100"
    assert project.hosts["far"].interfaces[0].address == "dhcp"
