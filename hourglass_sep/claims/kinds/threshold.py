"""A run against a number (e.g. a published figure): ``above`` / ``below``; the interval of
A's global metric minus the threshold (one number, or one per source) decides."""

from __future__ import annotations

from hourglass_sep.claims import stats as st
from hourglass_sep.claims.kinds.pairs import measure, pairs_row
from hourglass_sep.claims.kinds.record import Inputs, Kind, sources_of
from hourglass_sep.claims.runs import run_name
from hourglass_sep.errors import UserError


def _threshold(claim: dict, source: str) -> float:
    thr = claim["compare"]["threshold"]
    return thr[source] if isinstance(thr, dict) else thr


def _row(claim: dict, source: str, inputs: Inputs) -> dict:
    t = float(_threshold(claim, source))
    a = claim["runs"]["a"]
    kw = {k: v for k, v in inputs.opts.items() if k != "n_perm"}
    names = {"a": run_name(a), "b": f"{t:g}", "margin": 0.0, "threshold": t}

    def fn():
        return st.compare_threshold(inputs.scores, a, t, claim["metric"], source, **kw)

    rec = measure(fn, names, claim["expect"], 0.0, inputs)
    if "effect" in rec:
        rec["value"] = rec["effect"] + t  # the run's global metric itself
    return pairs_row(claim, [rec], claim["expect"] == "below")


def _text(claim: dict, source: str) -> str:
    return f"{run_name(claim['runs']['a'])} vs {_threshold(claim, source):g}"


def _check(claim: dict, where: str) -> None:
    thr = claim["compare"]["threshold"]
    if isinstance(thr, dict):
        lacking = [s for s in sources_of(claim) if s not in thr]
        if lacking:
            raise UserError(f"{where}.compare.threshold: no value for source(s) {lacking}")


KIND = Kind(
    name="threshold",
    expects=("above", "below"),
    summary="above/below: A vs a threshold (one number, or one per source)",
    forms=("threshold",),
    row=_row,
    compare_text=_text,
    unit="dB",
    check=_check,
)
