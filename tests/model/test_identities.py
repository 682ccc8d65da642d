"""Fixed identities of a host: ``uuid``, and the hash of hosts that do not use the new keys."""

from corral.model import Host, Interface
from corral.model.project import Disk


def test_uuid_is_read_and_normalised_to_lower_case(load) -> None:
    project = load(
        "global { project p }\nhost a { uuid BBDDA922-8EE3-4FF8-874E-7C4E712DC4C7 }\nhost b { }\n"
    )
    assert project.hosts["a"].uuid == "bbdda922-8ee3-4ff8-874e-7c4e712dc4c7"
    assert project.hosts["b"].uuid is None


def test_a_malformed_uuid_is_a_positioned_error(errors) -> None:
    found = errors(
        "global { project p }\nhost a {\n    uuid 26d1876a-85fc-49a4-9a5b-929570e18bb65\n}\n"
    )
    assert found == [
        "3:10: uuid: '26d1876a-85fc-49a4-9a5b-929570e18bb65' is not a UUID (8-4-4-4-12 hex "
        "digits, e.g. bbdda922-8ee3-4ff8-874e-7c4e712dc4c7)"
    ]


def test_hosts_without_the_new_keys_hash_as_they_did_before_them() -> None:
    """The hashes recorded in libvirt by earlier versions must still match, or every
    deployed host would plan an update for nothing."""
    nic = Interface(name="eth0", switch="lan", address="dhcp", mac="52:54:00:00:00:01")
    web = Host(name="web", template="tiny", service_host="local", interfaces=(nic,),
               disks=(Disk(name="data", size_mib=1024),))
    assert web.model_hash() == "86f9bbbaf6eb0660"
    assert Host(name="bare", service_host="local").model_hash() == "4a192181007c222f"


def test_a_uuid_changes_the_hash() -> None:
    bare = Host(name="bare", service_host="local")
    fixed = bare.model_copy(update={"uuid": "bbdda922-8ee3-4ff8-874e-7c4e712dc4c7"})
    assert fixed.model_hash() != bare.model_hash()


def test_an_interface_on_a_host_bridge(load) -> None:
    project = load(
        "global { project p }\nhost a {\n    network eth1 { bridge xenbr1\n address dhcp }\n}\n"
    )
    (nic,) = project.hosts["a"].interfaces
    assert (nic.bridge, nic.switch, nic.address) == ("xenbr1", None, "dhcp")


def test_bridge_and_switch_in_one_interface_and_bad_bridge_names_are_refused(errors) -> None:
    found = errors(
        "global { project p }\nswitch lan { }\nhost a {\n"
        "    network eth0 {\n        switch lan\n        bridge br0\n    }\n"
        "    network eth1 { bridge this-name-is-too-long }\n}\n"
    )
    assert found == [
        "6:9: interface eth0: 'bridge' and 'switch' (at p.mln:5:9) exclude each other: keep one",
        "8:27: bridge: 'this-name-is-too-long' is not a bridge name (1-15 of A-Z a-z 0-9 _ . -, "
        "as Linux names links)",
    ]


def test_disks_new_of_either_format_and_existing_images(load) -> None:
    project = load(
        "global { project p }\nhost a {\n"
        "    disk data { size 1G }\n"
        "    disk scratch { size 512M\n type raw }\n"
        "    disk root { path /guests//profiledev.img }\n"
        "    disk logs { path /guests/logs.qcow2\n type qcow2 }\n}\n"
    )
    disks = {d.name: (d.size_mib, d.type.value, d.path) for d in project.hosts["a"].disks}
    assert disks == {
        "data": (1024, "qcow2", None),
        "scratch": (512, "raw", None),
        "root": (None, "image", "/guests/profiledev.img"),
        "logs": (None, "qcow2", "/guests/logs.qcow2"),
    }


def test_disk_key_mistakes_are_positioned(errors) -> None:
    found = errors(
        "global { project p }\nhost a {\n"
        "    disk a { size 1G\n path /srv/a.img }\n"
        "    disk b { }\n"
        "    disk c { size 1G\n type image }\n"
        "    disk d { path srv/d.img }\n"
        "    disk e { path /srv/e.img\n type vmdk }\n}\n"
    )
    assert found == [
        "4:2: disk 'a': 'path' and 'size' (at p.mln:3:14) exclude each other: a path "
        "attaches an existing image as it is, a size makes a new disk",
        "5:5: disk 'b' needs a size (a new disk: size 10G) or a path (an existing image: "
        "path /srv/images/data.img)",
        "7:7: disk 'c': type image attaches an existing file: give its path",
        "8:19: path: 'srv/d.img' is not an absolute file path (e.g. /srv/images/data.img)",
        "10:7: unknown disk type 'vmdk': use one of qcow2, raw, image",
    ]


def test_a_host_using_new_disk_keys_hashes_differently() -> None:
    sized = Host(name="web", service_host="local", disks=(Disk(name="data", size_mib=64),))
    raw = Host(name="web", service_host="local",
               disks=(Disk(name="data", size_mib=64, type="raw"),))
    attached = Host(name="web", service_host="local",
                    disks=(Disk(name="data", path="/srv/data.img", type="image"),))
    assert len({sized.model_hash(), raw.model_hash(), attached.model_hash()}) == 3


def test_a_qcow2_disk_on_lvm_is_refused_since_it_would_be_raw(errors) -> None:
    found = errors(
        "global { project p }\nhost a {\n    lvm_vg vg0\n    disk d {\n        size 1G\n"
        "        type qcow2\n    }\n}\n"
    )
    assert found == [
        "6:14: disk 'd': a new disk on LVM is a raw logical volume: drop 'type qcow2' or 'lvm'"
    ]
