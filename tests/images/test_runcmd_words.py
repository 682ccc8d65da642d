"""runcmd words reach the guest's shell as written: a property test through the real pipeline.

Hypothesis makes commands of words with any printable characters (quotes,
``;``, ``*``, ``$``, spaces, backslashes, non-ASCII) and the few others a
quoted word may hold (tab, U+0085, U+2028, U+FEFF ...), writes them into a
project file the way docs/guest-configuration.md says (a quoted word is one
shell word; unquoted words only from a harmless alphabet), loads the file
(parse, expand, resolve, build), renders the seed, and runs its runcmd the
two ways guests do:

* cloud-init: each entry is one line of a ``#!/bin/sh`` script (cc_runcmd's
  ``shellify``, see test_cloudinit.py), run here by ``/bin/sh`` (dash);
* the tiny template: ``runcmd_script`` taken from its ``boot`` (flatyaml.awk
  on the user-data) run by busybox's ``sh``, then the script by busybox ``sh``.

Every command is ``printf '%s\\n' cmdN WORD...``, so the output is the word
list the shell saw, one per line, compared with the words generated.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.images.seed import seed_documents
from corral.model.load import load_project

TINY = Path(__file__).parents[2] / "corral/images/tiny"
EXAMPLES = int(os.environ.get("CORRAL_RUNCMD_EXAMPLES", "150"))
needs_shells = pytest.mark.skipif(
    shutil.which("busybox") is None or shutil.which("dash") is None, reason="no busybox or dash"
)

SPECIAL = [*"'\"\\;*$?[]{}()|&<>!#~` =%^,:@", "$HOME", "$$", "$[x]", "${x}", "'$a'", "  "]
# allowed in a file's quoted word though not printable: YAML writes them as escapes
SPECIAL += ["\t", "\x0c", "\x85", "\u2028", "\ufeff", "\x9f"]
printable = st.characters(codec="utf-8").filter(str.isprintable)
quoted_words = st.lists(st.one_of(st.sampled_from(SPECIAL), printable), max_size=8).map("".join)
unquoted_words = st.text(
    st.sampled_from("abcXYZ019_./,:+@%^=-"), min_size=1, max_size=6
).filter(lambda w: not w.startswith("="))
words = st.one_of(
    st.tuples(st.just(True), quoted_words, st.booleans()),
    st.tuples(st.just(False), unquoted_words, st.just(False)),
)
commands = st.lists(st.lists(words, max_size=6), min_size=1, max_size=4)


def written(text: str, quoted: bool, prefer_double: bool) -> str:
    """``text`` as the block language needs it to stay exactly one word."""
    if not quoted:
        return text
    if "'" not in text and not prefer_double:
        return f"'{text}'"  # literal: nothing is substituted
    # double quotes: \\ and \" escaped, and in runcmd $$ stands for one $
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
    return f'"{body}"'


def project_text(generated: list[list[tuple[bool, str, bool]]], value_form: bool) -> str:
    lines = [
        " ".join(["printf", "'%s\\n'", f"cmd{n}", *(written(w[1], w[0], w[2]) for w in command)])
        for n, command in enumerate(generated)
    ]
    if value_form and len(lines) == 1:
        runcmd = f"    runcmd {lines[0]}\n"
    else:
        runcmd = "    runcmd {\n" + "".join(f"        {line}\n" for line in lines) + "    }\n"
    return "global { project sd-words }\nhost h {\n" + runcmd + "}\n"


def expected_lines(generated: list[list[tuple[bool, str, bool]]]) -> list[str]:
    return [line for n, c in enumerate(generated) for line in (f"cmd{n}", *(w[1] for w in c))]


def shell_words(script: str, shell: list[str], tmp: Path) -> list[str]:
    path = tmp / "runcmd.sh"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run([*shell, str(path)], cwd=tmp, capture_output=True, check=True)
    return done.stdout.decode("utf-8").split("\n")[:-1]


def tiny_runcmd_script(user_data: Path) -> str:
    """The tiny guest's own runcmd_script function (from boot), run by busybox sh."""
    boot = (TINY / "boot").read_text()
    match = re.search(r"^runcmd_script\(\) \{\n.*?^\}\n", boot, re.MULTILINE | re.DOTALL)
    assert match is not None, "boot has no runcmd_script function"
    program = f'LIB={TINY}\n{match.group(0)}runcmd_script "$1"\n'
    done = subprocess.run(
        ["busybox", "sh", "-c", program, "sh", str(user_data)], capture_output=True, check=True
    )
    return done.stdout.decode("utf-8")


@needs_shells
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=commands, value_form=st.booleans())
def test_runcmd_words_reach_the_shell_as_written(
    tmp_path: Path, generated: list[list[tuple[bool, str, bool]]], value_form: bool
) -> None:
    source = tmp_path / "p.corral"
    source.write_text(project_text(generated, value_form), encoding="utf-8")
    host = load_project(source).hosts["h"]
    user_data = seed_documents(host, "sd-words").user_data
    runcmd = yaml.safe_load(user_data)["runcmd"]
    assert runcmd == list(host.runcmd) and len(runcmd) == len(generated)
    expected = expected_lines(generated)

    cloud_init_script = "#!/bin/sh\n" + "".join(f"{line}\n" for line in runcmd)
    assert shell_words(cloud_init_script, ["dash"], tmp_path) == expected

    seed_file = tmp_path / "user-data"
    seed_file.write_text(user_data, encoding="utf-8")
    tiny_script = tiny_runcmd_script(seed_file)
    assert tiny_script.split("\n")[:-1] == runcmd, "the guest reads back the lines seed.py wrote"
    assert shell_words(tiny_script, ["busybox", "sh"], tmp_path) == expected


@needs_shells
def test_unquoted_words_keep_their_shell_meaning(tmp_path: Path) -> None:
    out = tmp_path / "out"
    source = tmp_path / "p.corral"
    source.write_text(
        "global { project sd-words }\nhost h {\n    runcmd {\n"
        f'        echo "x|y" > {out}\n'
        f'        echo "a  b" $$PWD "$$PWD" && echo ok >> {out}\n'
        f"        'for i in 1 2; do echo \"$i\"; done >> {out}'\n"
        "    }\n}\n",
        encoding="utf-8",
    )
    runcmd = load_project(source).hosts["h"].runcmd
    script = "#!/bin/sh\n" + "".join(f"{line}\n" for line in runcmd)
    done = subprocess.run(["dash", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.stdout == f"a  b {tmp_path} $PWD\n"
    assert out.read_text() == "x|y\nok\n1\n2\n"
