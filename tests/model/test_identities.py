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
