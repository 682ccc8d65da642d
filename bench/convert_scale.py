"""Benchmark: ``corral convert`` of 1,000 VMs from LCFG xen resources and DVHMS XML.

Generates two sources of ``--vms`` machines each and converts them with
``corral.ops.convert.convert_file``, which reads the file, converts it and
loads the result as ``corral validate`` would:

* an LCFG profile of the ``xen`` component: per VM its name, UUID, type,
  memory, maxmem, vCPUs, template, two disks with sizes (the root disk with
  its type and directory), one bridged vif with MAC, address, netmask and
  gateway, a second ``nat`` vif on every fifth VM, and boot; groups of 100
  VMs (``virtualgroup``, ``members_G`` written ``vmA ... vmB`` as profiles
  abbreviate them, ``groupcpus_G``) and a group of every tenth VM on a
  bridge of its own (``groupbridge_G``). UUIDs, MACs and addresses are unique, so it converts
  without warnings (any are counted and shown);
* a DVHMS file of ``--vms`` run copies (``VHD``) over 8 host servers
  (``SRV``, on a management network of their own) and 4 masters (``IMG``),
  each with a unique MAC and address counted up from the DHCP server's
  network. The file has no netmask: the converter assumes the narrowest
  network around the DHCP address that holds them (a /22 for 1,000), and
  warns once that it did. The count of warnings is printed.

For each source, three measurements, each the best of ``--repeat`` runs,
each run in a fresh interpreter so no memory or cache is shared:

* ``convert_file`` — the whole conversion;
* ``load (validate)`` — the floor of Corral's own share: the written output
  loaded by ``corral validate``'s code path
  (``ProjectSource.from_path(...).load(site)``, the site with the output's
  service hosts);
* ``parse source`` — the floor of the converter's reading: the file read
  and parsed (``lxml`` with the converter's parser options for DVHMS,
  ``corral.convert.lcfg_resources.read`` for LCFG), nothing mapped.

Each child first does the same work on a tiny input, so imports and the
project grammar (built once per process) are not timed. Memory is the
child's peak resident set (``ru_maxrss`` of that child, from ``os.wait4``,
which is what ``RUSAGE_CHILDREN`` gives for one child), and its growth over
the child's own peak just before the timed call (after the warm-up and
reading the file): the first includes the interpreter and every import.
Ratios are against the two floors measured in the same run, and
``convert_file - load`` is the converter's own work.

    .venv/bin/python bench/convert_scale.py [--vms 1000] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GROUP_SIZE = 100
SERVERS = 8
MASTERS = ("sl6", "debian12", "centos7", "winxp")
TEMPLATES = ("/data/templates/sl6.img", "/data/templates/debian12.img",
             "/data/templates/centos7.img")
DHCP = "10.0.0.251"
KINDS = ("convert", "load", "parse")
LABELS = {"write": "the first conversion", "convert": "convert_file",
          "load": "load (validate)", "parse": "parse source"}


# --- the generated sources -------------------------------------------------------


def mac(index: int, first: int) -> str:
    """A MAC of the Xen (00:16:3e) or VMware (00:50:56) range, unique per index."""
    oui = "00:16:3e" if first == 0 else "00:50:56"
    return f"{oui}:{first:02x}:{index >> 8 & 0xff:02x}:{index & 0xff:02x}"


def vm_uuid(index: int) -> str:
    """A UUID that stays the same from run to run, so the files are reproducible."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"vm{index}.bench.corral"))


def lcfg_vm(n: int) -> list[str]:
    """The resources of VM ``vm{n}`` as lcfg-xen profiles write them."""
    t = f"vm{n}"
    lines = [
        f"!xen.name_{t}            mSET({t})",
        f"!xen.uuid_{t}            mSET({vm_uuid(n)})",
        f"!xen.type_{t}            mSET(paravm)",
        f"!xen.memory_{t}          mSET({256 * (1 + n % 4)})",
        f"!xen.maxmem_{t}          mSET(2048)",
        f"!xen.vcpus_{t}           mSET({1 + n % 2})",
        f"!xen.template_{t}        mSET({TEMPLATES[n % len(TEMPLATES)]})",
        f"!xen.disks_{t}           mADD(root data)",
        f"!xen.disktype_{t}_root   mSET(image)",
        f"!xen.disksize_{t}_root   mSET(20)",
        f"!xen.diskpath_{t}_root   mSET(/data/guests)",
        f"!xen.disksize_{t}_data   mSET({10 * (1 + n % 5)})",
        f"!xen.vifs_{t}            mADD(vif1)",
        f"!xen.nettype_{t}_vif1    mSET(bridge)",
        f"!xen.mac_{t}_vif1        mSET({mac(n, 0)})",
        f"!xen.ip_{t}_vif1         mSET(10.8.{n // 250}.{n % 250 + 2})",
        f"!xen.netmask_{t}_vif1    mSET(255.255.0.0)",
        f"!xen.gateway_{t}_vif1    mSET(10.8.0.1)",
    ]
    if n % 5 == 0 and n // 5 < 250:  # the nat switch is a /24: at most 253 fixed addresses
        lines += [
            f"!xen.vifs_{t}            mADD(vif2)",
            f"!xen.nettype_{t}_vif2    mSET(nat)",
            f"!xen.mac_{t}_vif2        mSET({mac(n, 1)})",
            f"!xen.ip_{t}_vif2         mSET(10.0.0.{n // 5 + 1})",
        ]
    lines.append(f"!xen.boot_{t}            mSET({'yes' if n % 3 else 'no'})")
    return lines


def lcfg_groups(vms: int) -> list[str]:
    """Racks of GROUP_SIZE VMs with their pinning, and a group of every tenth VM
    (from the third) on a bridge of its own: VMs with a ``nat`` vif are in no
    group with a bridge, since a group's bridge over a VM's own nettype is warned."""
    lines = []
    for start in range(1, vms + 1, GROUP_SIZE):
        end = min(vms, start + GROUP_SIZE - 1)
        g, rack = f"rack{start // GROUP_SIZE + 1}", start // GROUP_SIZE
        members = f"vm{start} ... vm{end}" if end > start + 1 else f"vm{start} vm{end}"
        lines += [
            f"!xen.virtualgroup        mADD({g})",
            f"!xen.members_{g}         mADD({' '.join(dict.fromkeys(members.split()))})",
            f"!xen.groupcpus_{g}       mSET({rack % 2 * 2},{rack % 2 * 2 + 1})",
            "",
        ]
    dmz = " ".join(f"vm{n}" for n in range(3, vms + 1, 10))
    if dmz:
        lines += ["!xen.virtualgroup        mADD(dmz)",
                  f"!xen.members_dmz         mADD({dmz})",
                  "!xen.groupbridge_dmz     mSET(xenbr1)"]
    return lines


def lcfg_source(vms: int) -> str:
    """An LCFG profile of ``vms`` machines (``virtualmachines`` written as a run)."""
    listed = f"vm1 ... vm{vms}" if vms > 2 else " ".join(f"vm{n}" for n in range(1, vms + 1))
    lines = ["/* lcfg-xen resources of a generated Xen host */",
             f"!xen.virtualmachines      mADD({listed})", ""]
    for n in range(1, vms + 1):
        lines += [*lcfg_vm(n), ""]
    return "\n".join(lines + lcfg_groups(vms)) + "\n"


def dvhms_address(index: int) -> str:
    """The run copy's address: counted up from 10.0.0.1, skipping the DHCP server."""
    skipped = index + (index >= 250)  # 10.0.0.251 is the DHCP server
    return f"10.0.{(skipped + 1) // 256}.{(skipped + 1) % 256}"


def dvhms_source(vms: int) -> str:
    """A DVHMS file of ``vms`` run copies over SERVERS host servers and the MASTERS."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<VHMS DHCP="{DHCP}">', "  <IMGLIST>"]
    for master in MASTERS:
        out += [f'    <IMG ID="{master}">', f"      <DESCR>A {master} master</DESCR>",
                f'      <LOC URL="file://var/vhms/mir/{master}_master.tar"></LOC>', "    </IMG>"]
    out += ["  </IMGLIST>", "  <SRVLIST>"]
    for server in range(SERVERS):
        out.append(f'    <SRV ID="hs{server + 1}" IP="192.168.10.{server + 1}">')
        copies = list(range(server, vms, SERVERS))
        for m, master in enumerate(MASTERS):
            mine = [i for i in copies if i // SERVERS % len(MASTERS) == m]
            if not mine:
                continue
            out.append(f'      <VHI ID="{master}">')
            out += [f'        <VHD RID="rc{i + 1}" MAC="{mac(i, 0x10)}" '
                    f'IP="{dvhms_address(i)}"></VHD>' for i in mine]
            out.append("      </VHI>")
        out.append("    </SRV>")
    out += ["  </SRVLIST>", "</VHMS>"]
    return "\n".join(out) + "\n"


# --- one measurement, in a child process -------------------------------------------


TINY = {"lcfg": "!xen.virtualmachines mADD(w)\n!xen.memory_w mSET(256)\n",
        "dvhms": '<VHMS DHCP="10.0.0.251"><SRVLIST><SRV ID="h" IP="10.0.0.9"><VHI ID="m">'
                 '<VHD RID="w" MAC="00:50:56:00:00:01" IP="10.0.0.2"/></VHI></SRV></SRVLIST>'
                 "</VHMS>\n"}


def child(kind: str, fmt: str, source: Path, output: Path) -> dict[str, object]:
    """Run one measurement after a warm-up on a tiny input; its figures as a dict."""
    warm = source.parent / f"warm-{os.getpid()}.{fmt}"
    warm_output = warm.with_suffix(".corral")
    warm.write_text(TINY[fmt])
    try:
        converted(fmt, warm, warm_output, write=True)  # imports, grammar, plugins
        step(kind, fmt, warm, warm_output)()
    finally:
        for path in (warm, warm_output, warm_output.with_suffix(".toml")):
            path.unlink(missing_ok=True)
    timed = step(kind, fmt, source, output)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    found = timed()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_before_kib": before, **found}


def step(kind: str, fmt: str, source: Path, output: Path) -> Callable[[], dict[str, object]]:
    """The timed call of ``kind`` (``write``: the conversion, its output saved)."""
    if kind in ("convert", "write"):
        return lambda: converted(fmt, source, output, write=kind == "write")
    if kind == "load":
        return lambda: loaded(output)
    return lambda: parsed(fmt, source)


def converted(fmt: str, source: Path, output: Path, write: bool) -> dict[str, object]:
    """``convert_file``, its load of the result (``check``) timed within the same
    call, so the split does not depend on two runs' noise; with ``write`` the
    project and its site config are saved as ``corral convert -o OUT
    --site-config OUT.toml`` would save them."""
    from corral.convert.result import Conversion
    from corral.ops import convert as operation

    original, checks = operation.check, []

    def timed_check(conversion: Conversion, name: Path) -> None:
        start = time.perf_counter()
        try:
            original(conversion, name)
        finally:
            checks.append(time.perf_counter() - start)

    operation.check = timed_check
    try:
        conversion = operation.convert_file(source, fmt)
    finally:
        operation.check = original
    if write:
        output.write_text(conversion.project)
        site = output.with_suffix(".toml")
        if conversion.site_config is not None:
            site.write_text(conversion.site_config)
        elif site.exists():
            site.unlink()
    return {"warnings": [w.render(source.name) for w in conversion.warnings],
            "project_lines": conversion.project.count("\n"), "check_seconds": sum(checks)}


def loaded(output: Path) -> dict[str, object]:
    """What ``corral validate OUT`` does, with the output's service hosts."""
    from corral.config import SiteConfig, parse_site_config
    from corral.ops.source import ProjectSource

    site_file = output.with_suffix(".toml")
    site = (parse_site_config(site_file.read_text(), site_file) if site_file.exists()
            else SiteConfig())
    project = ProjectSource.from_path(output).load(site)
    return {"hosts": len(project.hosts)}


def parsed(fmt: str, source: Path) -> dict[str, object]:
    """The source read and parsed, nothing mapped: the floor of the converter."""
    if fmt == "dvhms":
        from lxml import etree

        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                 remove_comments=True, remove_pis=True)
        root = etree.fromstring(source.read_bytes(), parser)
        return {"elements": sum(1 for _ in root.iter())}
    from corral.convert import lcfg_resources
    from corral.convert.result import Warnings

    resources = lcfg_resources.read(source.read_text(), Warnings())
    return {"resources": len(resources.values)}


# --- the parent: run children, keep the best -----------------------------------------


@dataclass
class Figure:
    """The best of the repeats of one measurement."""

    seconds: float
    peak_mib: float
    growth_mib: float
    details: dict[str, object]


class Failed(Exception):
    """A child failed: the benchmark stops with its reason."""


def measure(kind: str, fmt: str, source: Path, output: Path) -> tuple[float, float, float,
                                                                     dict[str, object]]:
    """One fresh child: seconds, its peak RSS and growth in MiB, what it reported.

    The child is reaped with ``os.wait4``, which gives that one child's
    ``ru_maxrss``; ``RUSAGE_CHILDREN`` would give the largest of all so far."""
    command = [sys.executable, __file__, "--child", kind, fmt, str(source), str(output)]
    with tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
        assert process.stdout is not None
        out = process.stdout.read()
        process.stdout.close()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        reason = (err.read().strip().splitlines() or ["no message"])[-1]
    if process.returncode != 0:
        raise Failed(f"{LABELS[kind]} of the {fmt} file failed: {reason}")
    found = json.loads(out)
    growth = usage.ru_maxrss - found.pop("rss_before_kib")
    return found.pop("seconds"), usage.ru_maxrss / 1024, growth / 1024, found


def best(fmt: str, source: Path, output: Path, repeat: int) -> dict[str, Figure]:
    """The fastest of ``repeat`` fresh runs of each measurement, taken in rounds
    (convert, load, parse, then again) so that other work on the machine
    slows the floors as much as the conversion; memory is the smallest peak."""
    runs: dict[str, list[tuple[float, float, float, dict[str, object]]]] = {
        kind: [] for kind in KINDS}
    for _ in range(repeat):
        for kind in KINDS:
            runs[kind].append(measure(kind, fmt, source, output))
    figures = {}
    for kind, taken in runs.items():
        fastest = min(taken, key=lambda r: r[0])
        figures[kind] = Figure(fastest[0], min(r[1] for r in taken),
                               min(r[2] for r in taken), fastest[3])
    return figures


def child_main(kind: str, fmt: str, source: str, output: str) -> None:
    """The child's entry: one measurement, printed as JSON."""
    print(json.dumps(child(kind, fmt, Path(source), Path(output))))


def warning_kinds(warnings: list[str]) -> Counter[str]:
    """Warnings grouped by their text with names, numbers and addresses blanked."""
    return Counter(re.sub(r"[\w.:-]*\d[\w.:/-]*", "N", w.split(": warning: ", 1)[-1])
                   for w in warnings)


def report(fmt: str, source: Path, figures: dict[str, Figure], vms: int, repeat: int) -> None:
    """The table of one format and what its warnings were."""
    convert, load, parse = (figures[k] for k in KINDS)
    size = source.stat().st_size
    lines = source.read_text().count("\n")
    warnings = list(convert.details["warnings"])  # type: ignore[call-overload]
    print(f"\n{fmt}: {vms} VMs, {lines:,} lines, {size / 1024:,.0f} KiB -> "
          f"{load.details['hosts']} hosts, {convert.details['project_lines']:,} project "
          f"lines; {len(warnings)} warnings; best of {repeat}, fresh process each")
    print(f"{'measurement':<18}{'seconds':>9}{'x load':>8}{'x parse':>9}"
          f"{'peak RSS MiB':>14}{'growth MiB':>12}")
    for kind in KINDS:
        f = figures[kind]
        print(f"{LABELS[kind]:<18}{f.seconds:>9.4f}{f.seconds / load.seconds:>8.2f}"
              f"{f.seconds / parse.seconds:>9.2f}{f.peak_mib:>14.1f}{f.growth_mib:>12.1f}")
    check = float(convert.details["check_seconds"])  # type: ignore[arg-type]
    own = convert.seconds - check
    print(f"within the fastest convert_file: its load of the result {check:.4f} s "
          f"({check / convert.seconds:.0%}), the converter's own work {own:.4f} s "
          f"({own / convert.seconds:.0%}, {own / parse.seconds:.2f} x parse)")
    for text, count in warning_kinds(warnings).most_common():
        example = next(w for w in warnings if warning_kinds([w]).get(text))
        print(f"  {count} x {example}")


def run(args: argparse.Namespace, work: Path) -> None:
    """Generate both sources in ``work``, measure them, print the tables."""
    # The parent stays small: a child's ru_maxrss starts from its parent's
    # resident set at the fork, so nothing of Corral is imported or run here.
    sources = {"lcfg": (work / "xen-profile.lcfg", lcfg_source),
               "dvhms": (work / "vhms.xml", dvhms_source)}
    print(f"corral convert of {args.vms} VMs; files in {work}")
    for fmt, (source, text) in sources.items():
        source.write_text(text(args.vms))
        output = source.with_suffix(".corral")
        measure("write", fmt, source, output)  # the output the load floor reads
        report(fmt, source, best(fmt, source, output, args.repeat), args.vms, args.repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="write the generated files and outputs here and keep them")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "FORMAT", "SOURCE", "OUTPUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(*args.child)
        return
    if args.vms < 1 or args.repeat < 1:
        sys.exit("convert_scale: --vms and --repeat must be at least 1")
    try:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            run(args, args.keep)
        else:
            with tempfile.TemporaryDirectory(prefix="corral-convert-") as tmp:
                run(args, Path(tmp))
    except Failed as error:
        sys.exit(f"convert_scale: {error}")


if __name__ == "__main__":
    main()
