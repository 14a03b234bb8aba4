"""The claims file: loading, validation against the schema and the kinds, run resolution.

A claims file (YAML; ``workflow/schemas/claims.schema.yaml``, example beside it) lists
claims such as "Ours equals Park's within 0.5 dB" or "4 > 3 > 2 > 1 stacks".  The schema
checks types and spellings; the ``expect`` values come from the kinds registry
(:mod:`hourglass_sep.claims.kinds.registry`), which the loader writes into the schema, so a
new kind needs no schema edit.  Errors name the claim and the key.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from pathlib import Path

import jsonschema
import yaml

from hourglass_sep.claims.kinds.registry import (
    expect_values,
    expects_taking,
    find_kind,
    kind_of,
    kinds,
    optional_keys,
)
from hourglass_sep.claims.runs import KnownRuns
from hourglass_sep.errors import UserError

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "claims.schema.yaml"
FORMS = {
    "b": "{a, b}",
    "each": "{a, each}",
    "chain": "{chain}",
    "threshold": "{a, threshold}",
    "a": "{a}",
}


def claims_schema(schema_path=None) -> dict:
    """The claims schema with the registry's ``expect`` values and their meanings."""
    schema = yaml.safe_load(Path(schema_path or SCHEMA).read_text())
    claim = schema.get("definitions", {}).get("claim", {}).get("properties", {})
    if "expect" in claim:
        claim["expect"]["enum"] = expect_values()
        claim["expect"]["description"] = "; ".join(k.summary for k in kinds())
    return schema


def _claim_where(doc: dict, path: Sequence) -> str:
    parts = list(path)
    if len(parts) >= 2 and parts[0] == "claims" and isinstance(parts[1], int):
        items = doc.get("claims") or []
        item = items[parts[1]] if parts[1] < len(items) else {}
        cid = item.get("id") if isinstance(item, dict) else None
        head = f"claims[{cid if isinstance(cid, str) else parts[1]}]"
        parts = parts[2:]
    else:
        head = "claims file"
    tail = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return head + tail


def _schema_check(doc: dict, schema_path) -> None:
    schema = claims_schema(schema_path)
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.path))
    )
    if errors:
        e = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise UserError(f"{_claim_where(doc, e.absolute_path)}: {e.message}{more}")


def _per_metric(threshold) -> bool:
    return isinstance(threshold, dict) and any(isinstance(v, dict) for v in threshold.values())


def _check_form(c: dict, where: str) -> None:
    """The compare form and the keys must suit the claim's kind; then the kind's own checks."""
    cmp, expect = c["compare"], c["expect"]
    kind = kind_of(c, where)
    form = next((k for k in ("chain", "threshold", "b", "each") if k in cmp), "a")
    if form == "b" and "each" in cmp:
        raise UserError(f"{where}.compare: give either b or each, not both")
    if form == "chain" and set(cmp) != {"chain"}:
        raise UserError(f"{where}.compare: a chain takes no other key (got {sorted(cmp)})")
    if form != "chain" and "a" not in cmp:
        raise UserError(f"{where}.compare.a: missing (the run the claim is about)")
    if form == "threshold" and "b" in cmp:
        raise UserError(f"{where}.compare: give either b or threshold, not both")
    if cmp.get("clips", "same") != "same" and (form != "b" or not kind.own_clips):
        raise UserError(f"{where}.compare.clips: 'own' compares two runs' scores ({{a, b}})")
    if form not in kind.forms:
        need = " or ".join(FORMS[f] for f in kind.forms)
        raise UserError(f"{where}.compare: expect {expect} needs {need}")
    if form == "threshold" and kind.metrics_of is None and _per_metric(cmp["threshold"]):
        raise UserError(
            f"{where}.compare.threshold: one number per metric is for a claim on several "
            f"metrics (expect above-all); expect {expect} takes one number per source"
        )
    for key in optional_keys():
        if key in c and expect not in kind.keys.get(key, ()):
            used = " / ".join(expects_taking(key))
            raise UserError(f"{where}.{key}: used only with expect {used}")
    kind.check(c, where)


def validate_claims(
    doc, known_runs: KnownRuns, speed_whats: Iterable[str] | None = None, schema_path=None
) -> list[dict]:
    """Check a claims document (``{"claims": [...]}`` or the list) against the schema and the
    known runs; return copies of the claims with defaults filled and runs resolved under
    ``runs`` (the input is left unchanged).

    Raises :class:`UserError` naming the claim id and key, e.g.
    ``claims[ours-vs-parks].compare.b: run 'parkz' is not a variant (known: [...])``.
    """
    doc = copy.deepcopy({"claims": doc} if isinstance(doc, list) else doc)
    if not isinstance(doc, dict):
        raise UserError("claims file: expected a mapping with a 'claims' list")
    for c in doc.get("claims") or []:
        if isinstance(c, dict):
            c.pop("runs", None)  # claims validated before: resolve their runs again
    _schema_check(doc, schema_path)
    whats = None if speed_whats is None else set(speed_whats)
    seen, out = set(), []
    for c in doc["claims"]:
        where = f"claims[{c['id']}]"
        if c["id"] in seen:
            raise UserError(f"{where}.id: the id {c['id']!r} is used twice; ids must be unique")
        seen.add(c["id"])
        c.setdefault("metric", "gnsdr")
        c.setdefault("source", "both")
        _check_form(c, where)
        c["runs"] = kind_of(c, where).resolve(c, known_runs, whats, where)
        out.append(c)
    return out


def load_claims(path, known_runs: KnownRuns, speed_whats=None, schema_path=None) -> list[dict]:
    """Read and validate a claims YAML file; errors start with the file name."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: claims file not found")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({exc})") from None
    try:
        return validate_claims(doc, known_runs, speed_whats, schema_path)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def claims_for_runs(claims: Sequence[dict], runs: Iterable[str]) -> tuple[list, list]:
    """(claims whose every compared run is among ``runs``, the ids of the others).

    A preset that runs a subset of the variants (``run_variants``) cannot judge a claim on a
    variant it did not train; such claims are left out of its claims file and named in the
    log, instead of stopping the verdicts of the others.
    """
    runs = set(runs)
    kept, dropped = [], []
    for c in claims:
        cmp = c.get("compare") or {}
        kind = find_kind(c)
        names = [
            *cmp.get("chain", []),
            *cmp.get("each", []),
            *[cmp[k] for k in ("a", "b") if k in cmp],
        ]
        names = names if kind is None or kind.on_runs else []  # e.g. speed-table rows
        ok = all(str(n).partition("@")[0] in runs for n in names)
        (kept if ok else dropped).append(c if ok else c.get("id"))
    return kept, dropped


def write_claims_file(claims: Sequence[dict], path, log=None, dropped=()) -> None:
    """The config's ``claims:`` list as the claims YAML the ``claims`` verb reads (rule
    claims_file); a changed list rewrites it and so reruns the verdicts.  ``dropped``: ids
    of claims left out because this preset does not run their variants (logged)."""
    Path(path).write_text(yaml.safe_dump({"claims": list(claims)}, sort_keys=False))
    if log:
        text = f"{len(claims)} claims written to {path}\n"
        if dropped:
            text += f"left out (variants not run by this preset): {', '.join(dropped)}\n"
        Path(log).write_text(text)
