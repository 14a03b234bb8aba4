"""Singing-voice separation with stacked hourglass networks: a reproducible MIR-1K benchmark.

Sub-packages, bottom floor first (a module imports only its own floor and the floors below;
``tests/test_architecture.py`` checks it, ``docs/architecture.md`` draws it):

- ``errors``      ``UserError``: a message for the user, printed without a traceback
- ``registry``    ``discover``: records found by scanning a package (backends, kinds)
- ``data``        audio I/O, MIR-1K, the synthetic corpus, the catalogue, features, the cache
- ``nets``        settings of a network, the model, hardware choices, inference, the shipped model
- ``plan``        config variants resolved into runs; sizing a network
- ``training``    the training loop (checkpoints, resume)
- ``separation``  mixture -> voice + accompaniment (clips, songs, shards)
- ``scoring``     BSS Eval backends, the reference cache, the baseline, usable clip scores
- ``results``     aggregate, the published numbers, speed, workbook, figures, report
- ``claims``      verdicts on the report's claims (statistics, tables, forest plot)
- ``pipeline``    what the Snakemake workflow needs: config validation, stale locks
- ``cli``         the ``hourglass-sep`` command
"""

__version__ = "0.1.0"
