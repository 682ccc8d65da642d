"""Validate XML with libvirt's own ``virt-xml-validate`` and the RNG schemas it ships.

One validator run per document costs a few tens of milliseconds (a shell
script around ``xmllint --relaxng``), so documents are validated one by one
and a failure names the document and quotes xmllint's complaint.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

VALIDATOR = shutil.which("virt-xml-validate")


def validate(xml: str, schema: str, what: str) -> None:
    """Fail the test unless ``xml`` is valid against libvirt's ``schema`` RNG
    (``domain``, ``network``, ``storagepool``, ``storagevol``)."""
    if VALIDATOR is None or shutil.which("xmllint") is None:
        pytest.fail("virt-xml-validate and xmllint are needed (libvirt-clients, libxml2-utils)")
    done = subprocess.run(
        [VALIDATOR, "-", schema], input=xml, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, (
        f"{what} is not a valid libvirt {schema} XML:\n{done.stderr.strip()}\n{xml}"
    )
