"""Write experiments.json: the resolved variant table at this scale, one row per evaluated model.

Thin wrapper: the logic is hourglass_sep.plan.experiments.experiment_rows.
"""

import datetime
import json
import sys

from hourglass_sep import __version__
from hourglass_sep.data.audio import atomic_path
from hourglass_sep.plan.experiments import experiment_rows, resolve

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821  (snakemake object injected by Snakemake)

params = snakemake.params  # noqa: F821
config = {"variants": params.variants, "scale": params.scale}
meta = dict(
    preset=params.preset,
    scale=params.preset,
    scale_settings=params.scale,
    dataset=params.dataset,
    test_clips=params.test_clips,
    date=datetime.date.today().isoformat(),
    version=__version__,
)
table = experiment_rows(resolve(config), meta, params.results)
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    tmp.write_text(json.dumps(table, indent=1))
