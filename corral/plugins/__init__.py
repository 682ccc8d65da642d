"""Plugins: blocks in a project's ``global`` stanza (refined per host) that extend the language.

See :mod:`corral.plugins.base` for the interface and
:mod:`corral.plugins.registry` for how they are found (the ``corral.plugins``
entry-point group).
"""
