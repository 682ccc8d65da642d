"""Converting the configuration of another VM manager into a Corral project.

Each source format has a reader of its own (:mod:`.dvhms`, :mod:`.lcfg`,
:mod:`.vmgen`) that turns the file into Corral statements (:mod:`.writer`)
and a list of warnings for what it could not carry over (:mod:`.result`); :mod:`.detect`
guesses the format when none is given. The operation that validates the
output is :mod:`corral.ops.convert`.
"""
