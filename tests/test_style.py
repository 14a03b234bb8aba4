"""The style checks (ruff lint + format, snakefmt) are part of the test suite.

They run `.ci/lint`, the same script a developer runs by hand, so the README's test command
checks the style too.  Skipped only where the tools are not installed (`pip install -e
".[test]"` brings them).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str | None:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


@pytest.mark.skipif(
    not (_tool("ruff") and _tool("snakefmt")),
    reason="ruff/snakefmt not installed (pip install -e '.[test]')",
)
def test_code_is_clean_under_ruff_and_snakefmt():
    env_path = str(Path(sys.executable).parent)
    r = subprocess.run(
        ["bash", str(REPO / ".ci" / "lint")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": f"{env_path}:/usr/bin:/bin"},
        timeout=300,
    )
    assert r.returncode == 0, f"style problems:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
