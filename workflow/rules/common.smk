# Config validation, the resolved variant table and the small helpers every rule file uses.
# Nothing here imports torch: dry runs stay fast.

import os
import shutil
import subprocess
from pathlib import Path

from snakemake.logging import logger

from hourglass_sep.config import upgrade_legacy, validate_config
from hourglass_sep.experiments import (
    ConfigError,
    arch_flags,
    resolve,
    train_flags,
    training_priorities,
)

_extra_rules = config.pop("extra_rules", None)
# old config keys (seed_row, kind: seed) are renamed in place, each with a warning in the log
try:
    for _note in upgrade_legacy(config):
        logger.warning(f"config warning: {_note}")
    validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
config["extra_rules"] = _extra_rules

R = config["results"].rstrip("/")
# absolute, so rules derived with `use rule` in files elsewhere still find it
CONDA_ENV = os.path.join(workflow.basedir, "envs", "hourglass-sep.yaml")
VARIANTS = resolve(config)
# longest trainings first, so no core idles at the end beside one long run
TRAIN_PRIORITY = training_priorities(VARIANTS)
SHARDS = list(range(config["evaluation"]["shards"]))
DATASET = config["dataset"]
DEVICE = config["device"]
EVAL = config["evaluation"]
EXAMPLE = config.get("example_variant") or next(iter(VARIANTS))
if EXAMPLE not in VARIANTS:
    EXAMPLE = next(iter(VARIANTS))


wildcard_constraints:
    variant=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    step=r"\d+",
    shard=r"\d+",
    split="train|test",


def visible_gpus():
    """GPUs this machine shows (CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`), without importing torch."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return len([d for d in env.split(",") if d.strip() not in ("", "-1")])
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


GPU = (1 if visible_gpus() > 0 else 0) if DEVICE["gpu"] == "auto" else int(DEVICE["gpu"])
GPU_DEVICE = "cuda" if GPU else "cpu"
ALLOW_CPU = "--allow-cpu" if DEVICE["allow_cpu"] else ""
PRECISION = DEVICE["precision"]  # separate --precision; train --amp takes off for fp32
TRAIN_AMP = {"fp32": "off"}.get(PRECISION, PRECISION)


# ------------------------------------------------------------------ dataset paths
def synth_root():
    s = DATASET["synthetic"]
    return (
        f"resources/synthetic/seed{s['seed']}_{s['singers']}x{s['songs']}x{s['clips']}"
        f"_{s['min_seconds']:g}-{s['max_seconds']:g}s"
    )


def dataset_marker():
    """The file whose existence says the clips are complete and checked."""
    src = DATASET["source"]
    if src == "synthetic":
        return f"{synth_root()}/synth.json"
    if src == "mir1k":
        return "resources/mir1k/MIR-1K/.verified"
    local = Path(DATASET["local"])
    if local.suffix.lower() == ".zip":
        return "resources/mir1k-local/MIR-1K/.verified"
    return []  # a local folder is read in place


# ------------------------------------------------------------------ variant helpers
def evaluations():
    """(variant, step) of every evaluated model."""
    return [(v.name, e.step) for v in VARIANTS.values() for e in v.evaluations]


def score_files():
    return [f"{R}/scores/{v}/step{s}/shard{k}.tsv" for v, s in evaluations() for k in SHARDS]


def snapshot_flag(wildcards):
    return ",".join(str(s) for s in VARIANTS[wildcards.variant].snapshot_steps)
