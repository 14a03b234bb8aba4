"""A run's trainings output silence (the report's row 12: "the network output all zeros"):
a divergence claim, judged over seeds, not clips.  A seed (replicate) is silent on a source
when every one of its clip estimates of that source is silent; the effect is the share of
silent seeds, k of n, with a Clopper-Pearson interval over seeds.  holds: every seed silent;
contradicted: none; inconclusive: some.  One seed is not a verdict: a run of one replicate
is "inconclusive (one seed)", with what that seed showed in the detail (docs/statistics.md,
"Diverged seeds")."""

from __future__ import annotations

import math

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.divergence import clopper_pearson
from hourglass_sep.claims.kinds.record import Inputs, Kind
from hourglass_sep.claims.runs import run_name
from hourglass_sep.claims.tables import ONE_SEED
from hourglass_sep.scoring.clip_status import is_silent


def _silent_seeds(rows, source: str) -> tuple[int, int, str]:
    """(silent seeds, seeds, "replicate r: k of m clips silent; ...")."""
    silent, parts = 0, []
    for rep, g in rows.groupby("replicate", sort=True):
        k = int(is_silent(g["status"], source).sum())
        silent += k == len(g)
        parts.append(f"replicate {rep}: {k} of {len(g)} clips silent")
    return silent, rows["replicate"].nunique(), "; ".join(parts)


def _verdict(k: int, n: int) -> str:
    if n < 2:
        return ONE_SEED
    return "holds" if k == n else "contradicted" if k == 0 else "inconclusive"


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    a, scores = claim["runs"]["a"], inputs.every_seed
    base = {"variance": "seeds", "margin": math.nan}
    if not ((scores["variant"] == a[0]) & (scores["step"] == a[1])).any():
        return {**base, "verdict": "no data", "detail": f"no scores for run {run_name(a)}"}
    rows = st.run_rows(scores, a)
    k, n, per_seed = _silent_seeds(rows, source)
    lo, hi = clopper_pearson(k, n, inputs.opts.get("confidence", st.CONFIDENCE))
    verdict = _verdict(k, n)
    head = f"{k} of {n} seed(s) output a silent {source} on every clip ({per_seed})"
    if verdict == ONE_SEED:
        would = "holds" if k == n else "contradicted"
        head += f"; one seed would say {would}: train >= 2 replicates"
    return {
        **base,
        "effect": k / n,
        "lo": lo,
        "hi": hi,
        "verdict": verdict,
        "n_clips": int(rows["clip"].nunique()),
        "n_replicates": n,
        "detail": head,
    }


KIND = Kind(
    name="silent",
    expects=("silent",),
    summary="silent: every seed of A outputs silence (all estimates zeros)",
    forms=("a",),
    row=_row,
    compare_text=lambda claim, source: run_name(claim["runs"]["a"]),
    unit="share of seeds",
    metric="status",
)
