"""The project language: parse (block text or YAML), expand (includes, variables), resolve.

    load_document(path, text=None) -> Document   parse + expand; SourceErrors on any problem
    parse_text(text, file) -> Document            block language only, includes not spliced
    parse_yaml(text, file) -> Document            YAML only, includes not spliced
    expand(document, load_include) -> Document    splice includes, substitute $variables

``grammar.lark`` is the grammar; ``tree`` the syntax tree all of them produce.
"""

from corral.lang.expand import expand
from corral.lang.load import load_document
from corral.lang.parser import parse_text
from corral.lang.yaml_source import parse_yaml

__all__ = ["expand", "load_document", "parse_text", "parse_yaml"]
