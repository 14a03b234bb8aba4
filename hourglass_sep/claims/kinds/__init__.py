"""The claim kinds: one module per kind, each defining ``KIND`` (a
:class:`hourglass_sep.claims.kinds.record.Kind`); :mod:`hourglass_sep.claims.kinds.registry`
finds them by scanning this package, so a new kind is a new file here plus its test.

Owns: what each ``expect`` of a claims file means and how its verdict is computed.
May import: ``results`` and every floor below it, and ``hourglass_sep.claims`` modules
outside ``verdicts``, ``spec``, ``tables`` and ``cli`` (those read the registry).
"""
