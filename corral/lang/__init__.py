"""The project language: parse (block text or YAML), expand (includes, variables), resolve.

load_document(path) -> Document     parse + expand, positioned SourceErrors on any problem
"""

from corral.lang.load import load_document

__all__ = ["load_document"]
