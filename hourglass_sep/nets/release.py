"""How a trained ``model.pt`` becomes the model shipped inside the package (``export-release``).

``hourglass_sep/resources/release.pt`` holds the architecture and the weights in float16
(half the bytes of a ``model.pt``, no optimizer state); ``release.json`` beside it holds
its md5 and a summary of how it was trained.  ``hourglass-sep separate`` without
``--model`` loads it with ``torch.load(weights_only=True)`` after checking the md5, so
a damaged or replaced file is refused with a message instead of separating with
garbage.  Make one with::

    hourglass-sep export-release results/release/models/release/model.pt hourglass_sep/resources
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
from pathlib import Path

import torch

from hourglass_sep.data.audio import atomic_path
from hourglass_sep.errors import UserError
from hourglass_sep.nets.inference import RELEASE_FORMAT, build_loaded, read_model_file
from hourglass_sep.nets.model import count_parameters
from hourglass_sep.nets.shipped import RELEASE_JSON, RELEASE_PT, RESOURCES, file_md5

FP16_MAX = 65504.0
# model.pt fields copied into the release record (the training summary)
TRAINING_KEYS = (
    "step",
    "wall_seconds",
    "device",
    "parameters",
    "torch",
    "bn_statistics",
    "weights",
)


def _portable(path) -> str:
    """``path`` relative to the working directory when it lies below it (a record shipped in
    the package should not name the exporting machine's folders), else as given."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def compact_state(state: dict) -> tuple[dict, str]:
    """Floating tensors as float16 (float32 where a value would not fit); (state, dtype)."""
    out, kept = {}, []
    for k, v in state.items():
        if not v.is_floating_point():
            out[k] = v.clone()
            continue
        v = v.detach().float()
        fits = bool(torch.isfinite(v).all()) and (v.numel() == 0 or float(v.abs().max()) < FP16_MAX)
        out[k] = v.half() if fits else v
        if not fits:
            kept.append(k)
    return out, "float16" if not kept else f"float16 (float32: {', '.join(kept)})"


def _prediction_change(arch, state: dict, compact: dict) -> float:
    """Relative change of the last stack's prediction on 2 s of noise, fp16 vs fp32 weights."""

    torch.manual_seed(0)
    x = torch.rand(1, 1, 512, 2 * arch.time_multiple)
    with torch.inference_mode():
        ref = build_loaded(arch, state, "model").eval()(x)[-1]
        est = build_loaded(arch, compact, "release").eval()(x)[-1]
    return float((est - ref).norm() / ref.norm().clamp_min(1e-30))


def export_release(
    model_pt: str | os.PathLike, out_dir: str | os.PathLike, summary: dict | None = None
) -> tuple[Path, Path]:
    """Write ``release.pt`` (float16 weights) and ``release.json`` (md5, training record).

    ``summary``: extra figures for the record (e.g. the test GNSDR).  Returns the paths.
    """

    arch, state, rest = read_model_file(model_pt)
    build_loaded(arch, state, str(model_pt))  # refuse weights that do not fit now
    compact, dtype = compact_state(state)
    out = Path(out_dir)
    data = {"format": RELEASE_FORMAT, "arch": arch.to_dict(), "state_dict": compact}
    data.update({k: rest[k] for k in ("step", "device") if k in rest})
    pt = out / RELEASE_PT
    buffer = io.BytesIO()  # a file object: the archive's inner name does not depend on a
    torch.save(data, buffer)  # temporary file's name, so the same model gives the same md5
    with atomic_path(pt) as tmp:
        tmp.write_bytes(buffer.getvalue())
    record = {
        "file": RELEASE_PT,
        "md5": file_md5(pt),
        "bytes": pt.stat().st_size,
        "format": RELEASE_FORMAT,
        "dtype": dtype,
        "arch": arch.to_dict(),
        "parameters": count_parameters(build_loaded(arch, state, str(model_pt))),
        "prediction_change_fp16": _prediction_change(arch, state, compact),
        "source": {"path": _portable(model_pt), "md5": file_md5(Path(model_pt))},
        "training": {k: rest[k] for k in TRAINING_KEYS if k in rest},
        "train_config": rest.get("train", {}),
        "summary": dict(summary or {}),
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    js = out / RELEASE_JSON
    with atomic_path(js) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return pt, js


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("model", help="model.pt written by `hourglass-sep train`")
    ap.add_argument(
        "out_dir", nargs="?", default=str(RESOURCES), help="where to write them (the package's)"
    )
    ap.add_argument("--summary", help="JSON file of figures to record (e.g. the test GNSDR)")


def run(args: argparse.Namespace) -> int:
    """Export and print the record's headline (the ``export-release`` verb's body)."""
    summary = None
    if args.summary:
        try:
            summary = json.loads(Path(args.summary).read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{args.summary}: cannot read as JSON ({exc})") from None
    pt, js = export_release(args.model, args.out_dir, summary)
    record = json.loads(js.read_text())
    print(
        f"{pt}: {record['bytes'] / 1e6:.1f} MB, md5 {record['md5']}, {record['dtype']}, "
        f"prediction change {record['prediction_change_fp16']:.1e}; record {js}"
    )
    return 0
