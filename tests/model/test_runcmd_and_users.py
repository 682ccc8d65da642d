"""runcmd's quoting rule, the $$ escape and the password marker, through the real pipeline."""

from __future__ import annotations

import pytest


def runcmd_of(load, body: str) -> tuple[str, ...]:
    return load(f"$v = 1\nglobal {{ project p }}\nhost a {{\n{body}\n}}\n").hosts["a"].runcmd


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # a quoted word is one shell word, whatever it holds
        ('runcmd { echo "a;b" "*" }', ("echo 'a;b' '*'",)),
        ("runcmd { echo \"it's\" }", ("echo 'it'\"'\"'s'",)),
        ("runcmd { printf '%s' '$HOME' \"\" }", ("printf %s '$HOME' ''",)),
        # an unquoted word keeps its shell meaning
        ('runcmd { echo "x|y" > /tmp/out && cat /tmp/out | wc -l }',
         ("echo 'x|y' > /tmp/out && cat /tmp/out | wc -l",)),
        # a command that is one quoted string goes as it stands
        ("runcmd { 'for i in 1 2; do echo \"$i\"; done' }", ('for i in 1 2; do echo "$i"; done',)),
        ('runcmd "apt-get update" "reboot"', ("apt-get update", "reboot")),
        ('runcmd "apt-get update"', ("apt-get update",)),
        # values with an unquoted word are the words of one command
        ('runcmd touch "/tmp/a b"', ("touch '/tmp/a b'",)),
        ("runcmd reboot", ("reboot",)),
        # $$ is the shell's $ in runcmd, in unquoted and double-quoted words
        ('runcmd { echo $$HOME "$$HOME" $$ }', ("echo $HOME '$HOME' $",)),
        ("runcmd echo $$USER-$[v]", ("echo $USER-1",)),
    ],
)
def test_runcmd_commands(load, body: str, expected: tuple[str, ...]) -> None:
    assert runcmd_of(load, body) == expected


def test_corral_variables_still_work_in_runcmd(load) -> None:
    text = "$cmd = 'apt-get update'\n$dir = /srv\nglobal { project p }\n"
    text += 'host a { runcmd { $cmd\n ls $dir "$[dir]/x y" } }\n'
    assert load(text).hosts["a"].runcmd == ("apt-get update", "ls /srv '/srv/x y'")


def test_yaml_list_of_commands_goes_as_written(load) -> None:
    text = "global: {project: p}\nhost a:\n  runcmd: [apt-get update, 'echo \"a;b\" > /tmp/x']\n"
    project = load(text, "p.yaml")
    assert project.hosts["a"].runcmd == ("apt-get update", 'echo "a;b" > /tmp/x')


def test_shell_variable_written_bare_is_an_error_with_the_way_out(errors) -> None:
    found = errors("global { project p }\nhost a {\n runcmd {\n  echo $HOME\n }\n}\n")
    assert len(found) == 1
    assert found[0].startswith("4:8: undefined variable '$HOME'")
    assert "write $$HOME" in found[0]


def test_braces_in_a_runcmd_line_are_an_error_not_a_lost_line(errors) -> None:
    found = errors("global { project p }\nhost a {\n runcmd {\n  echo ${HOME}\n }\n}\n")
    assert len(found) == 1 and found[0].startswith("4:3: a runcmd line cannot hold a block")


def test_double_dollar_outside_runcmd_is_left_alone(load) -> None:
    project = load("global { project p }\nhost a { root_passwd $1$$abc$def }\n")
    assert project.hosts["a"].root_passwd == "$1$$abc$def"


def test_crypt_marker_without_a_hash_is_a_positioned_error(errors) -> None:
    found = errors(
        "global { project p }\nhost a {\n users { kyrre crypt:nothash }\n"
        " root_passwd crypt:147/Y.NtB9\n}\n"
    )
    assert len(found) == 2
    assert found[0].startswith("3:16: password of kyrre: 'crypt:' must be followed by a crypt hash")
    assert found[1].startswith("4:14: root_passwd: 'crypt:' must be followed by a crypt hash")


def test_passwords_are_kept_as_written_in_the_model(load) -> None:
    users = "users { kyrre crypt:147/Y.NtB9p7w; ann 147/Y.NtB9p7w }"
    text = f"global {{ project p }}\nhost a {{\n {users}\n}}\n"
    project = load(text)
    assert project.hosts["a"].users == {"kyrre": "crypt:147/Y.NtB9p7w", "ann": "147/Y.NtB9p7w"}
