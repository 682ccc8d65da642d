"""Read a YAML project file into the same syntax tree as the block language.

YAML is only another spelling of the tree; expand and resolve treat it exactly
like block text. The file is composed (not constructed) with PyYAML, so every
scalar keeps the text it was written with (``03`` stays ``03``) and its
position (the node's start mark, made 1-based).

The mapping, with the block-language equivalent on the right:

    memory: 128M                      memory 128M
    xen:            (or true / yes)   xen              (a flag; false / no omits it)
    packages: [vim, curl]             packages vim curl
    addresses begin: 150              addresses begin 150   (a key of several words)
    global: {project: italy}          global { project italy }
    host uno: {superclass: basic}     host uno { superclass basic }
    host: {uno: {superclass: basic}}  host uno { superclass basic }
    switch lan:     (null)            switch lan { }
    include: servers.txt              #include servers.txt  (a list includes each)
    $gnum: "03"                       $gnum = 03

Every value scalar is one word whatever it holds, as a "quoted" word is in
the block language, so it becomes a :class:`~corral.lang.parser.QuotedWord`
(``runcmd: [apt-get update, reboot]`` is two commands, each as written);
``$name`` and ``$[name]`` are still substituted in it.

A key's first word names the statement and any further words are its labels.
Under the keys that take a label (``host``, ``switch``, ``superclass``,
``group``, ``network``) a mapping is read as ``LABEL: BODY`` pairs, one block per label;
under any other key a mapping is the block's own statements. A labelled block
written with a null value is an empty block. Repeated keys are kept, in order.
"""

from __future__ import annotations

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from corral.errors import DiagnosticSink, SourceErrors, Span
from corral.lang.parser import INCLUDE_KEY, MAX_NESTING, QuotedWord, check_characters
from corral.lang.tree import Document, Statement, Word

LABELLED_KEYS = frozenset({"host", "switch", "superclass", "group", "network"})
"""Keys whose YAML mapping value holds one block per label."""

INCLUDE = "include"

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_TRUE = frozenset({"true", "yes", "on", "y"})


def parse_yaml(text: str, file: str) -> Document:
    """Parse YAML ``text`` read from ``file`` into a :class:`Document`."""
    check_characters(text, file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        raise SourceErrors.single(_mark_span(file, error), _yaml_message(error)) from None
    except yaml.YAMLError as error:
        raise SourceErrors.single(Span(file, 1, 1), f"invalid YAML: {error}") from None
    except RecursionError:
        raise SourceErrors.single(Span(file, 1, 1), "YAML nested too deeply") from None
    if root is None:
        return Document(path=file)
    reader = _YamlReader(file)
    if not isinstance(root, MappingNode):
        message = "a YAML project file must be a mapping of keys"
        raise SourceErrors.single(reader.span(root), message)
    statements = reader.mapping(root, depth=0)
    reader.sink.raise_if_any()
    return Document(path=file, statements=statements)


def _mark_span(file: str, error: yaml.MarkedYAMLError) -> Span:
    mark = error.problem_mark or error.context_mark
    if mark is None:
        return Span(file, 1, 1)
    return Span(file, mark.line + 1, mark.column + 1)


def _yaml_message(error: yaml.MarkedYAMLError) -> str:
    parts = [part for part in (error.context, error.problem) if part]
    return "invalid YAML: " + (", ".join(parts) if parts else "cannot parse")


class _YamlReader:
    """Converts composed YAML nodes of one file into statements."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.sink = DiagnosticSink()
        self.open_nodes: set[int] = set()  # against recursive aliases (&a [*a])

    def span(self, node: Node, shift: int = 0) -> Span:
        quoted = 1 if isinstance(node, ScalarNode) and node.style in ("'", '"') else 0
        return Span(
            self.file, node.start_mark.line + 1, node.start_mark.column + 1 + quoted + shift
        )

    def mapping(self, node: MappingNode, depth: int) -> tuple[Statement, ...]:
        if depth >= MAX_NESTING or id(node) in self.open_nodes:
            self.sink.error(self.span(node), "YAML nested too deeply or recursive")
            return ()
        self.open_nodes.add(id(node))
        statements: list[Statement] = []
        for key_node, value_node in node.value:
            statements.extend(self.entry(key_node, value_node, depth))
        self.open_nodes.discard(id(node))
        return tuple(statements)

    def entry(self, key_node: Node, value: Node, depth: int) -> list[Statement]:
        words = self.key_words(key_node)
        if not words:
            return []
        if len(words) == 1 and words[0].text == INCLUDE:
            return self.includes(words[0], value)
        if len(words) == 1 and words[0].text in LABELLED_KEYS and isinstance(value, MappingNode):
            return self.labelled(words[0], value, depth)
        statement = self.statement(words, value, depth)
        return [statement] if statement is not None else []

    def key_words(self, node: Node) -> list[Word]:
        if not isinstance(node, ScalarNode) or node.tag == _NULL or not node.value.strip():
            self.sink.error(self.span(node), "a key must be a plain word such as 'memory'")
            return []
        words: list[Word] = []
        index = 0
        for part in node.value.split():
            index = node.value.index(part, index)
            words.append(Word(part, self.span(node, index)))
            index += len(part)
        return words

    def includes(self, key: Word, value: Node) -> list[Statement]:
        include_key = Word(INCLUDE_KEY, key.span)
        if isinstance(value, ScalarNode) and value.tag == _NULL:
            paths: list[Word] = []
        else:
            paths = self.scalars(value.value if isinstance(value, SequenceNode) else [value])
        if not paths:
            self.sink.error(key.span, "include needs a file name", "write: include: FILE")
        return [Statement(key=include_key, values=(path,)) for path in paths]

    def labelled(self, key: Word, value: MappingNode, depth: int) -> list[Statement]:
        """``host: {uno: {...}, due: {...}}``: one labelled block per entry."""
        statements: list[Statement] = []
        for label_node, body in value.value:
            labels = self.key_words(label_node)
            if labels:
                statement = self.statement([key, *labels], body, depth + 1)
                if statement is not None:
                    statements.append(statement)
        return statements

    def statement(self, words: list[Word], value: Node, depth: int) -> Statement | None:
        key, labels = words[0], tuple(words[1:])
        if isinstance(value, MappingNode):
            return Statement(key=key, values=labels, block=self.mapping(value, depth + 1))
        if isinstance(value, SequenceNode):
            return Statement(key=key, values=labels + tuple(self.scalars(value.value)))
        assert isinstance(value, ScalarNode)
        if value.tag == _NULL:
            empty_block = labels and key.text in LABELLED_KEYS
            return Statement(key=key, values=labels, block=() if empty_block else None)
        if value.tag == _BOOL:
            return Statement(key=key, values=labels) if value.value.lower() in _TRUE else None
        return Statement(key=key, values=(*labels, QuotedWord(value.value, self.span(value))))

    def scalars(self, nodes: list[Node]) -> list[Word]:
        words: list[Word] = []
        for node in nodes:
            if isinstance(node, ScalarNode) and node.tag != _NULL:
                words.append(QuotedWord(node.value, self.span(node)))
            else:
                self.sink.error(
                    self.span(node), "expected a plain value here, not a list or mapping"
                )
        return words
