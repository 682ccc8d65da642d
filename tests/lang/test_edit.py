"""Setting a host's key in the project file's text: every other byte stays."""

from corral.lang.edit import set_host_key

PROJECT = """\
global {
    project lab   # the lab
}
superclass basic {
    template tiny
    memory 128M
}
superclass placed {
    superclass basic
    service_host h3
}
# web runs on h1 for now
host web {
    superclass basic
    service_host   h1   # keep this comment
    network eth0 { switch lan }
}
host db {
	superclass basic
	memory 256M
}
host tiny { superclass basic }
host empty {}
host inherits {
    superclass placed
}
host quoted {
    service_host "h1"
}
host var {
    service_host $where
}
"""


def _edit(host: str, line: int, column: int = 1, current: str = "local"):
    return set_host_key(PROJECT, "lab.corral", host, "service_host", "h2",
                        at=(line, column), current=current, default="local")


def test_a_stated_value_is_replaced_in_place():
    edit = _edit("web", 13, current="h1")
    assert edit.text == PROJECT.replace("service_host   h1   #", "service_host   h2   #")
    assert edit.instruction == "lab.corral:15: service_host h1 -> h2"


def test_a_missing_key_is_added_with_the_block_indentation():
    edit = _edit("db", 18)
    assert edit.text == PROJECT.replace(
        "host db {\n\tsuperclass", "host db {\n\tservice_host h2\n\tsuperclass"
    )
    assert edit.line == 19


def test_a_one_line_block_gets_the_statement_inline():
    edit = _edit("tiny", 22)
    assert edit.text is not None
    assert "host tiny { service_host h2; superclass basic }" in edit.text
    assert _edit("empty", 23).text == PROJECT.replace(
        "host empty {}", "host empty { service_host h2;}"
    )


def test_a_quoted_value_is_replaced_with_its_quotes():
    edit = _edit("quoted", 27, current="h1")
    assert edit.text == PROJECT.replace('service_host "h1"', "service_host h2")


def test_a_value_from_a_superclass_is_not_guessed():
    edit = _edit("inherits", 24, current="h3")
    assert edit.text is None
    assert "lab.corral:10" in edit.instruction and "superclass" in edit.instruction


def test_a_variable_is_not_guessed():
    edit = _edit("var", 30, current="h1")
    assert edit.text is None
    assert edit.instruction.startswith("lab.corral:31:")


def test_a_value_from_a_plugin_is_not_guessed():
    edit = _edit("db", 18, current="h4")
    assert edit.text is None and "plugin" in edit.instruction


def test_no_block_at_the_origin_and_yaml_files_are_not_edited():
    assert _edit("web", 12).text is None
    yaml = set_host_key("hosts: {}\n", "lab.yaml", "web", "service_host", "h2",
                        at=(1, 1), current="local", default="local")
    assert yaml.text is None and yaml.instruction.startswith("lab.yaml:1:")


def test_set_project_name_changes_the_one_word() -> None:
    from corral.lang.edit import set_project_name

    text = "# lab\nglobal {\n    project lab   # the name\n}\nhost a { template t }\n"
    edit = set_project_name(text, "lab.corral", "lab2")
    assert edit.text == text.replace("project lab ", "project lab2 ")
    assert set_project_name("host a { }\n", "x.corral", "n").text is None
    by_variable = set_project_name("global { project $name }\n", "x.corral", "n")
    assert by_variable.text is None and "x.corral:1: change it to `project n`" in \
        by_variable.instruction
    assert set_project_name("global: {}\n", "x.yaml", "n").text is None


GROUPED = """\
global { project lab }
superclass placed { service_host h3 }
group first { members a b
    service_host h4 }
group second { members b
    memory 256M }
host a { superclass placed }
host b { superclass placed }
host c { superclass placed }
"""


def test_a_value_from_a_group_is_not_guessed_and_the_group_is_named():
    """A group's value wins over the host's superclass: the group's line is the one
    named; a host outside the group is pointed at its superclass."""
    for host, line in (("a", 7), ("b", 8)):
        edit = set_host_key(GROUPED, "lab.corral", host, "service_host", "h2",
                            at=(line, 1), current="h4", default="")
        assert edit.text is None
        assert "change lab.corral:4" in edit.instruction and "from a group" in edit.instruction
    edit = set_host_key(GROUPED, "lab.corral", "c", "service_host", "h2",
                        at=(9, 1), current="h3", default="")
    assert "change lab.corral:2" in edit.instruction and "from a superclass" in edit.instruction
