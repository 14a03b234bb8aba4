"""``snakemake --report``: the README advertises Snakemake's HTML report for a finished run.

Built from the tiny preset's run (the session's ``tiny_run`` fixture, shared with
test_workflow.py); every product marked ``report(...)`` in workflow/rules/results.smk must
be in it, with its caption rendered for the preset (a missing caption file fails the build).
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

from conftest import snakemake

# the products marked report(...) in workflow/rules/results.smk
PRODUCTS = [
    "result.xlsx",
    "report.md",
    "speed.tsv",
    "claims/claims.html",
    *(
        f"figures/{n}.png"
        for n in ("metrics", "nsdr_distribution", "training_loss", "example", "speed", "claims")
    ),
]


def _embedded(html: str, name: str) -> dict:
    """A table the report embeds as JSON: ``results`` (path -> name, caption, data URI...)
    or ``categories`` (category -> subcategory -> paths)."""
    m = re.search(rf"var {name} = (\{{.*?\}});\s*\n", html)
    assert m, f"no {name} table in the HTML report (did Snakemake's report layout change?)"
    return json.loads(m.group(1))


def _embedded_results(html: str) -> dict:
    return _embedded(html, "results")


def test_html_report_names_every_product(tiny_run: Path, tmp_path: Path):
    out = tmp_path / "report.html"
    r = snakemake(tiny_run, "--report", str(out), "--configfile", "configs/tiny.yaml")
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    html = out.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>") and "</html>" in html[-200:]
    HTMLParser().feed(html)  # raises on markup it cannot tokenise

    results = _embedded_results(html)
    res = tiny_run / "results" / "tiny"
    expected = {f"results/tiny/{p}" for p in PRODUCTS}
    assert set(results) == expected
    for key, entry in results.items():
        assert entry["caption"].strip(), f"{key}: empty caption"
        assert "tiny" in entry["caption"], f"{key}: caption does not name the preset"
        assert "{{" not in entry["caption"], f"{key}: caption template left unrendered"
        payload = entry["data_uri"].split("base64,", 1)[1]
        assert base64.b64decode(payload) == (res / key.split("results/tiny/", 1)[1]).read_bytes()
    # the workflow description names the preset and links the categories
    assert "Preset" in html and "showCategory('Results')" in html
    assert "showCategory('Claims')" in html

    # the claims on a page of their own: the verdict table (HTML) and the forest plot
    claims = _embedded(html, "categories")["Claims"]
    assert sorted(p for paths in claims.values() for p in paths) == [
        "results/tiny/claims/claims.html",
        "results/tiny/figures/claims.png",
    ]
    page = results["results/tiny/claims/claims.html"]
    assert page["mime_type"] == "text/html" and page["labels"]["product"] == "verdict table"
    text = base64.b64decode(page["data_uri"].split("base64,", 1)[1]).decode("utf-8")
    assert "<table>" in text and "voice-mask-voice-fine" in text and "ours-trains" in text


# ----------------------------------------------------------------------------- dependencies
def _closure(name: str, extras: frozenset = frozenset(), seen: dict | None = None) -> dict:
    """Distribution name -> installed distribution, for ``name`` and what it requires
    (markers evaluated for this interpreter and the extras asked for)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen = {} if seen is None else seen
    key = canonicalize_name(name)
    if key in seen:
        return seen
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return seen
    seen[key] = dist
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
            continue
        _closure(req.name, frozenset(req.extras), seen)
    return seen


def _top_level_names(dist) -> set[str]:
    names = set()
    for f in dist.files or []:
        head = f.parts[0]
        if head.endswith((".dist-info", ".egg-info", ".pth")) or head in ("..", "__pycache__"):
            continue
        names.add(head[:-3] if head.endswith(".py") else head)
    return {n for n in names if n.isidentifier()}


BLOCKER = """
import sys
BLOCKED = set({names!r})
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not a dependency)", name=name)
sys.meta_path.insert(0, _Block())
import pkgutil  # plugin registries (Snakemake's executors) discover modules by name
_iter = pkgutil.iter_modules
pkgutil.iter_modules = lambda *a, **k: (m for m in _iter(*a, **k) if m.name not in BLOCKED)
"""


def test_html_report_needs_only_the_main_dependencies(tiny_run: Path, tmp_path: Path):
    """`pip install hourglass-sep` (no test extras) must be enough for `snakemake --report`:
    every module of an installed distribution outside the package's dependency closure
    (pytest, ruff, snakefmt and theirs) is made unimportable for this run."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    keep = _closure("hourglass-sep")
    assert "pygments" in keep, "snakemake --report imports pygments: a main dependency"
    allowed = set().union(*(_top_level_names(d) for d in keep.values()))
    blocked = set()
    for dist in metadata.distributions():
        if canonicalize_name(dist.metadata["Name"]) not in keep:
            blocked |= _top_level_names(dist) - allowed
    assert {"pytest", "ruff"} & blocked  # the test extras are really out of reach
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER.format(names=sorted(blocked)))
    out = tmp_path / "report.html"
    r = snakemake(
        tiny_run, "--report", str(out), "--configfile", "configs/tiny.yaml", pythonpath=site
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert "</html>" in out.read_text(encoding="utf-8")[-200:]
