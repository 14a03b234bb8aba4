"""One module per scoring backend, each defining ``SCORER`` (a ``scorer_record.Scorer``).

Owns: the backends' code.  May import: ``scoring.scorer_record``, ``scoring.signals``,
``scoring.bss_eval`` and the floors below ``scoring``.  A new backend is a new module here
plus its test; ``scoring.backends`` finds it.
"""
