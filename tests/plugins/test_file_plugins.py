"""sshkey, files and apache: global blocks refined per host (MLN Listing 7)."""

from pathlib import Path

from corral.plugins.apache import CONFIG_PATH

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBXAruCzR4vVHWcDjMSYru+CyjI/bqFE5E1XuMdoJTgy x@y"


def test_sshkey_reads_files_relative_to_the_project_and_merges_global_and_host(load) -> None:
    Path("keys").mkdir()
    Path("keys/nagios.pub").write_text(f"# monitoring\n{KEY}\n")
    Path("keys/deploy.pub").write_text(KEY.replace("x@y", "deploy@ci") + "\n")
    project = load(
        "global { project p\n sshkey { nagios keys/nagios.pub } }\n"
        "host a { sshkey { deploy keys/deploy.pub } }\nhost b { }\n"
    )
    assert project.hosts["a"].ssh_keys == {
        "nagios": (KEY,),
        "deploy": (KEY.replace("x@y", "deploy@ci"),),
    }
    assert project.hosts["b"].ssh_keys == {"nagios": (KEY,)}
    assert project.hosts["b"].plugins["sshkey"] == {"nagios": "keys/nagios.pub"}


def test_sshkey_missing_or_bad_file_is_positioned(errors) -> None:
    Path("bad.pub").write_text("not a key\n")
    found = errors("global { project p\n sshkey { nagios missing.pub bad.pub } }\nhost a { }\n")
    assert found[0].startswith("2:18: sshkey: cannot read key file missing.pub: No such file")
    assert found[1] == "2:30: sshkey: bad.pub does not hold OpenSSH public keys"


def test_files_plain_and_block_forms_host_wins_per_path(load) -> None:
    Path("app.conf").write_text("key = value\n")
    project = load(
        """\
        global { project p
            files {
                /etc/motd "Welcome\\n"
                /etc/app.conf { source app.conf
                    owner root:app
                    permissions 640 }
            }
        }
        host a { files { /etc/motd "Only a\\n" } }
        host b { }
        """
    )
    a = {f.path: f for f in project.hosts["a"].files}
    b = {f.path: f for f in project.hosts["b"].files}
    assert a["/etc/motd"].content == "Only a\n" and b["/etc/motd"].content == "Welcome\n"
    app = a["/etc/app.conf"]
    assert (app.content, app.owner, app.permissions) == ("key = value\n", "root:app", "0640")


def test_files_errors(errors) -> None:
    found = errors(
        "global { project p }\nhost a { files {\n etc/motd hi\n /x { owner r00t:: } } }\n"
    )
    assert found == [
        "3:2: files: 'etc/motd' is not an absolute path in the guest",
        "4:2: files: /x needs exactly one of content or source",
        "4:13: owner: 'r00t::' is not USER or USER:GROUP",
    ]


def test_apache_merges_global_and_host_into_one_config_file(load) -> None:
    project = load(
        "global { project webserv\n apache { doc_root /var/www } }\n"
        "host web14 { apache { max_connections 300 } }\nhost web15 { }\n"
    )
    web14 = {f.path: f.content for f in project.hosts["web14"].files}
    assert web14[CONFIG_PATH].splitlines()[1:] == ["DocumentRoot /var/www", "MaxRequestWorkers 300"]
    web15 = {f.path: f.content for f in project.hosts["web15"].files}
    assert web15[CONFIG_PATH].splitlines()[1:] == ["DocumentRoot /var/www"]
    assert "apache2" in project.hosts["web14"].packages


def test_apache_unknown_setting_has_hint(errors) -> None:
    found = errors("global { project p }\nhost a { apache { doc_rot /srv } }\n")
    assert found == ["2:19: unknown key 'doc_rot' (did you mean 'doc_root'?)"]
