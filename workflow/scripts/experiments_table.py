"""Write experiments.json: the runs the workflow resolved, one row per evaluated model.

Thin wrapper: the rows come from the rule's params (``plan.experiments.experiment_rows`` of the
runs in common.smk, so the table cannot disagree with the DAG); ``experiments_table`` adds the
parameter counts.
"""

import datetime
import json
import sys

from hourglass_sep import __version__
from hourglass_sep.data.audio import atomic_path
from hourglass_sep.plan.experiments import experiments_table

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821  (snakemake object injected by Snakemake)

params = snakemake.params  # noqa: F821
meta = dict(
    preset=params.preset,
    scale=params.preset,
    scale_settings=params.scale,
    dataset=params.dataset,
    test_clips=params.test_clips,
    date=datetime.date.today().isoformat(),
    version=__version__,
)
table = experiments_table(params.rows, meta)
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    tmp.write_text(json.dumps(table, indent=1))
