"""Compare syntax trees by their text alone, positions left out."""

from __future__ import annotations

from corral.lang.tree import Document, Statement

Shape = tuple


def shape(node: Document | Statement | tuple[Statement, ...]) -> Shape:
    """``(key, (values...), block)`` per statement, ``block`` None for a plain statement."""
    if isinstance(node, Document):
        return shape(node.statements)
    if isinstance(node, Statement):
        block = None if node.block is None else shape(node.block)
        return (node.key.text, tuple(value.text for value in node.values), block)
    return tuple(shape(statement) for statement in node)


def s(key: str, *values: str, block: tuple | None = None) -> Shape:
    """Build an expected statement shape: ``s("host", "uno", block=(s("xen"),))``."""
    return (key, values, block)
