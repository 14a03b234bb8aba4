"""A claim on several metrics at once: ``greater-all`` (A > B) and ``above-all`` (A above a
published figure) on each of ``metrics`` (GNSDR, GSIR, GSAR by default) of each source.

The report's "6项指标均获得了小幅提升" (all six metrics improved) and "全面超越了Park"
(surpasses Park on all) are intersection-union claims: one row per (source, metric), each
with its own interval, and a claim-level row that holds iff every part holds and is
contradicted iff any part is (added by the verdict table for every claim of several parts).
A published threshold is one training of someone else's: it carries no seed variance, so
the interval covers only ours, and the detail says so.
"""

from __future__ import annotations

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.kinds.pairs import measure, pairs_row, run_pairs, two_runs_text
from hourglass_sep.claims.kinds.record import Inputs, Kind, sources_of
from hourglass_sep.claims.runs import run_name
from hourglass_sep.errors import UserError

METRICS = ("gnsdr", "gsir", "gsar")
EXPECTS = ("greater-all", "above-all")
FORM = {"greater-all": "b", "above-all": "threshold"}
SINGLE_RUN = "one training, no seed variance"


def metrics_of(claim: dict) -> tuple[str, ...]:
    return tuple(claim.get("metrics") or METRICS)


def _threshold(claim: dict, source: str) -> float:
    return float(claim["compare"]["threshold"][source][claim["metric"]])


def _above(claim: dict, source: str, inputs: Inputs) -> dict:
    t, a = _threshold(claim, source), claim["runs"]["a"]
    kw = {k: v for k, v in inputs.opts.items() if k != "n_perm"}
    names = {"a": run_name(a), "b": f"{t:g}", "margin": 0.0, "threshold": t}

    def fn():
        return st.compare_threshold(inputs.scores, a, t, claim["metric"], source, **kw)

    rec = measure(fn, names, "above", 0.0, inputs)
    if "effect" in rec:
        rec["value"] = rec["effect"] + t  # the run's global metric itself
    row = pairs_row(claim, [rec], upper=False)
    published = f"{claim.get('threshold_source') or 'the threshold'}: {SINGLE_RUN}"
    row["detail"] = "; ".join(x for x in (row["detail"], published) if x)
    return row


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    if claim["expect"] == "above-all":
        return _above(claim, source, inputs)
    pairs = run_pairs({**claim, "expect": "greater"}, source, inputs)
    return pairs_row(claim, pairs, upper=False)


def _text(claim: dict, source: str) -> str:
    if claim["expect"] == "above-all":
        return f"{run_name(claim['runs']['a'])} vs {_threshold(claim, source):g}"
    return two_runs_text(claim, source)


def _check(claim: dict, where: str) -> None:
    """greater-all compares two runs, above-all a run with one number per source and metric."""
    expect, cmp = claim["expect"], claim["compare"]
    if FORM[expect] not in cmp:
        need = "{a, b}" if FORM[expect] == "b" else "{a, threshold}"
        raise UserError(f"{where}.compare: expect {expect} needs {need}")
    if expect != "above-all":
        return
    thr = cmp["threshold"]
    for source in sources_of(claim):
        given = thr.get(source) if isinstance(thr, dict) else None
        if not isinstance(given, dict):
            raise UserError(
                f"{where}.compare.threshold.{source}: expect above-all needs one number per "
                f"metric, e.g. {{gnsdr: 10.51, gsir: 16.01, gsar: 12.53}}"
            )
        lacking = [m for m in metrics_of(claim) if m not in given]
        if lacking:
            raise UserError(f"{where}.compare.threshold.{source}: no value for {lacking}")


KIND = Kind(
    name="all-metrics",
    expects=EXPECTS,
    summary=(
        "greater-all / above-all: A > B / A > a published figure on every one of `metrics` "
        "(gnsdr, gsir, gsar) of every source; holds iff all parts hold (intersection-union)"
    ),
    forms=("b", "threshold"),
    row=_row,
    compare_text=_text,
    unit="dB",
    keys={"metrics": EXPECTS, "threshold_source": ("above-all",)},
    check=_check,
    metrics_of=metrics_of,
)
