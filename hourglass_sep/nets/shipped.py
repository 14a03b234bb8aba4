"""The model shipped inside the package: where it lies and the md5 check before it is loaded.

``hourglass_sep/resources/release.pt`` holds the architecture and the weights in float16;
``release.json`` beside it holds its md5 and a summary of how it was trained
(``nets.release`` writes both).  ``hourglass-sep separate`` without ``--model`` loads it after
checking the md5, so a damaged or replaced file is refused with a message instead of
separating with garbage.  Its own module so that loading (``nets.inference``) and exporting
(``nets.release``) both use it without importing each other.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from hourglass_sep.errors import UserError

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
RELEASE_PT = "release.pt"
RELEASE_JSON = "release.json"


def file_md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_model_path(resources: str | os.PathLike | None = None) -> Path:
    """The shipped ``release.pt`` after checking its md5 against ``release.json``.

    ``resources``: the folder holding them (default: the package's ``resources/``).

    Raises ``UserError`` when either file is missing, the record is unreadable or the
    md5 differs, saying what to do (reinstall, or pass ``--model``).
    """
    res = Path(RESOURCES if resources is None else resources)
    pt, record_path = res / RELEASE_PT, res / RELEASE_JSON
    remedy = "reinstall hourglass-sep, or pass --model model.pt (a model you trained)"
    for f in (pt, record_path):
        if not f.is_file():
            raise UserError(f"{f}: the shipped model is missing from this install; {remedy}")
    try:
        record = json.loads(record_path.read_text())
        expected = str(record["md5"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"{record_path}: unreadable release record ({type(exc).__name__}: {exc}); {remedy}"
        ) from None
    got = file_md5(pt)
    if got != expected:
        raise UserError(
            f"{pt}: md5 {got} differs from {expected} recorded in {record_path.name}: the shipped "
            f"model is damaged or was replaced; {remedy}"
        )
    return pt
