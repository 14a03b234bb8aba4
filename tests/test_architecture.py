"""The package's floors: imports only go down, there is no import cycle, and every name is
imported from the module that defines it (no re-exports).

Read from the source with ``ast`` (nothing is imported), so the test also sees the imports
inside functions that hid the old cycles.  The floor order is docs/architecture.md's.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "hourglass_sep"
# bottom to top: a module may import its own sub-package and the floors below it
FLOORS = [
    "errors",
    "registry",
    "data",
    "methods",  # beside nets (floor 2 in the docs); listed below it: it may import data only
    "nets",
    "plan",
    "training",
    "separation",
    "scoring",
    "results",
    "claims",
    "pipeline",
    "cli",
]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def floor(module: str) -> str:
    """``hourglass_sep.scoring.score`` -> ``scoring``; top-level modules are their own floor."""
    return module.split(".")[1] if module.count(".") else ""


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) of every ``hourglass_sep`` import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "hourglass_sep":
                out.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level:
            out.append(("<relative>", [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "hourglass_sep":
                    out.append((a.name, [], node.lineno))
    return out


def targets(module: str, names: list[str], known: dict[str, Path]) -> list[str]:
    """The package modules an import statement loads: ``from a.b import c`` is ``a.b.c``
    when that is a module, else ``a.b``."""
    subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in known]
    rest = [n for n in names if f"{module}.{n}" not in known]
    return subs + ([module] if rest or not names else [])


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        m: {t for mod, names, _ in imports(p) for t in targets(mod, names, known) if t != m}
        for m, p in known.items()
    }


def test_no_relative_imports():
    bad = [
        f"{p.relative_to(REPO)}:{line}"
        for p in PKG.rglob("*.py")
        for mod, _, line in imports(p)
        if mod == "<relative>"
    ]
    assert not bad, f"relative imports (write hourglass_sep.<floor>.<module>): {bad}"


def test_every_module_sits_on_a_known_floor():
    for m in modules():
        if m == "hourglass_sep":
            continue
        f = floor(m) or m.split(".")[1]
        assert f in FLOORS or m.split(".")[1] in FLOORS, f"{m}: add its floor to FLOORS and docs"


def _rank(module: str) -> int:
    name = module.split(".")[1] if module.count(".") else "errors"
    return FLOORS.index(name) if name in FLOORS else -1


def test_imports_only_go_down():
    known, bad = modules(), []
    for m, p in known.items():
        if m == "hourglass_sep":
            continue
        for mod, names, line in imports(p):
            for t in targets(mod, names, known):
                if t == "hourglass_sep" or floor(t) == floor(m) and floor(m):
                    continue
                if _rank(t) > _rank(m):
                    bad.append(f"{m}:{line} imports {t} (floor {floor(t) or t} is above)")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for t in sorted(g.get(n, ())):
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state and (cycle := visit(n)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def defined_names(path: Path) -> set[str]:
    """Names a module defines at its top level (functions, classes, assignments)."""
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                out |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return out


def test_names_are_imported_from_their_owner():
    """``from hourglass_sep.x.y import name``: ``name`` is defined in ``x/y.py`` or is a module
    (package, tests, benchmarks, workflow scripts and rules)."""
    known = modules()
    defined = {m: defined_names(p) for m, p in known.items()}
    files = [*PKG.rglob("*.py"), *REPO.glob("tests/*.py"), *REPO.glob("benchmarks/*.py")]
    files += [*REPO.glob("workflow/scripts/*.py")]
    bad = []
    for p in files:
        for mod, names, line in imports(p):
            if mod not in known:
                continue
            for n in names:
                if f"{mod}.{n}" in known or n in defined[mod] or n == "*":
                    continue
                bad.append(f"{p.relative_to(REPO)}:{line}: {n} is not defined in {mod}")
    assert not bad, "names imported from a module that does not own them:\n" + "\n".join(bad)


def test_snakefile_imports_come_from_their_owner():
    known = modules()
    defined = {m: defined_names(p) for m, p in known.items()}
    bad = []
    for p in [REPO / "Snakefile", *REPO.glob("workflow/rules/*.smk")]:
        for line in p.read_text().splitlines():
            words = line.split()
            if len(words) > 3 and words[0] == "from" and words[2] == "import":
                mod = words[1]
                if mod in known:
                    names = " ".join(words[3:]).strip("()").split(",")
                    for n in (x.strip() for x in names if x.strip()):
                        if n not in defined[mod] and f"{mod}.{n}" not in known:
                            bad.append(f"{p.name}: {n} is not defined in {mod}")
    assert not bad, bad


def test_subpackage_inits_say_what_they_own_and_import_nothing():
    for init in PKG.glob("*/__init__.py"):
        tree = ast.parse(init.read_text())
        doc = ast.get_docstring(tree) or ""
        assert "Owns:" in doc and "May import:" in doc, f"{init}: docstring"
        assert all(isinstance(n, ast.Expr) for n in tree.body), f"{init}: code besides the doc"


def test_architecture_doc_names_every_rule_and_subpackage():
    """docs/architecture.md ("read this first") must not fall behind the code again."""
    import re

    doc = (REPO / "docs" / "architecture.md").read_text()
    rules = set()
    for p in [REPO / "Snakefile", *REPO.glob("workflow/rules/*.smk")]:
        rules |= set(re.findall(r"^(?:rule|checkpoint) (\w+):", p.read_text(), re.M))
    missing = sorted(r for r in rules if not re.search(rf"\b{r}\b", doc))
    assert not missing, f"rules missing from docs/architecture.md: {missing}"
    subs = sorted(p.parent.name for p in PKG.glob("*/__init__.py"))
    assert all(f"`{s}/`" in doc for s in subs), subs
