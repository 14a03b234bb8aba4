"""Verdicts on the report's conclusions: the claims spec and its validation, the kinds of
claim (``kinds/``, one module each), the statistics (bootstrap and t intervals over clips and
replicates, permutation p-values), the verdict tables and the forest plot.

Owns: ``hourglass-sep claims``.  May import: ``results`` and every floor below it.
"""
