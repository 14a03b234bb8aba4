# Config validation, the resolved runs and the small helpers every rule file uses.
# Nothing here imports torch: dry runs stay fast.

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from snakemake.logging import logger

from hourglass_sep.data.catalogue import MIR1K_TEST_CLIPS
from hourglass_sep.claims.spec import claims_for_runs, write_claims_file
from hourglass_sep.pipeline.config import upgrade_legacy, validate_config
from hourglass_sep.plan.methods import methods_oracle, methods_rows
from hourglass_sep.plan.experiments import (
    ConfigError,
    arch_flags,
    experiment_rows,
    resolve,
    train_flags,
    training_priorities,
)
from hourglass_sep.claims.looks import load_plan
from hourglass_sep.pipeline.sequential_runs import added_runs, design_of, reserve_runs
from hourglass_sep.pipeline.workflow_locks import clear_stale_locks

# a run killed by SIGKILL leaves its locks: the same command resumes (main process only)
if workflow.is_main_process:
    clear_stale_locks(os.getcwd(), logger.warning)

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
# every run: each variant once per replicate (NAME, NAME.s<seed>, ...) and the evaluation
# variants (model: + evaluation:), which train nothing; resolved here, once
RUNS = resolve(config)
SHARDS = list(range(config["evaluation"]["shards"]))
DATASET = config["dataset"]
DEVICE = config["device"]
EVAL = config["evaluation"]
EXAMPLE = config.get("example_variant") or next(iter(RUNS))
if EXAMPLE not in RUNS:
    EXAMPLE = next(iter(RUNS))


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
PRECISION = DEVICE["precision"]  # train --precision and separate --precision


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


# ------------------------------------------------------------------ run helpers
TRAINED = [name for name, v in RUNS.items() if v.trains]
# training-free methods (kind: repet-sim, rpca, oracle-*): separated without a model, step 0
FREE = [name for name, v in RUNS.items() if v.free]


def name_pattern(names):
    """A wildcard constraint matching exactly ``names`` (nothing when empty)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


# experiments.json's rows, from the runs above (the job adds the parameter counts)
EXPERIMENT_ROWS = experiment_rows(RUNS, R, config["preset"])
# claims on variants this preset runs (run_variants may select a subset), and the others' ids
CLAIMS_RUN = claims_for_runs(config.get("claims") or [], {v.base_variant for v in RUNS.values()})
CLAIMS = bool(CLAIMS_RUN[0])
# a sequential design (claims_sequential) may add replicates to the runs of undecided
# confirmatory claims: resolved here like every run, built only when a look asks for them
try:
    SEQUENTIAL = CLAIMS and design_of(config, config.get("replicates") or 1)
    RESERVE = reserve_runs(config, RUNS, CLAIMS_RUN[0], SEQUENTIAL) if SEQUENTIAL else {}
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
# every run that rules may build -- the configured ones and a design's reserve
ALL_RUNS = {**RUNS, **RESERVE}
ALL_TRAINED = [name for name, v in ALL_RUNS.items() if v.trains]
# longest trainings first, so no core idles at the end beside one long run
TRAIN_PRIORITY = training_priorities(ALL_RUNS)


def evaluations():
    """(variant, step) of every evaluated model."""
    return [(v.name, e.step) for v in RUNS.values() for e in v.evaluations]


def run_score_files(name, step):
    """The score tables of one evaluated run: its shards, or one file for a test subset."""
    if ALL_RUNS[name].subset:
        return [f"{R}/scores/{name}/step{step}/subset.tsv"]
    return [f"{R}/scores/{name}/step{step}/shard{k}.tsv" for k in SHARDS]


def score_files():
    return [f for v, s in evaluations() for f in run_score_files(v, s)]


def model_snapshots(wildcards):
    """The snapshot folder a run separates with: its own, or its model's (evaluation variants)."""
    return f"{R}/models/{ALL_RUNS[wildcards.variant].model}/snapshots"


def model_snapshot(wildcards):
    return f"{model_snapshots(wildcards)}/step{wildcards.step}.pt"


def eval_setting(key):
    """A params function: the run's own evaluation setting, else the config's."""
    return lambda wildcards: ALL_RUNS[wildcards.variant].evaluation.get(key, EVAL[key])


def subset_inputs(wildcards):
    """The model's full score tables a test-subset run selects its clips from."""
    model = ALL_RUNS[wildcards.variant].model
    return [f"{R}/scores/{model}/step{wildcards.step}/shard{k}.tsv" for k in SHARDS]


def snapshot_flag(wildcards):
    return ",".join(str(s) for s in ALL_RUNS[wildcards.variant].snapshot_steps)


# ------------------------------------------------------------------ the Methods table
try:
    METHODS_ROWS, METHODS_SKIPPED = methods_rows(config, RUNS)
    # the ceiling of the fraction-of-oracle columns, when this preset runs it
    METHODS_ORACLE = methods_oracle(config) if METHODS_ROWS else None
    METHODS_ORACLE = METHODS_ORACLE if METHODS_ORACLE in RUNS else None
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
if METHODS_SKIPPED and workflow.is_main_process:
    logger.info(
        f"methods_table: {METHODS_SKIPPED} left out (not run by this preset"
        + ("; fewer than two rows: no Methods table)" if not METHODS_ROWS else ")")
    )


def methods_score_files():
    """The score tables of every replicate of the Methods table's rows (and its oracle)."""
    wanted = {(row["variant"], row["step"]) for row in METHODS_ROWS}
    oracle = RUNS.get(METHODS_ORACLE)
    if oracle is not None:
        wanted.add((METHODS_ORACLE, oracle.evaluations[-1].step))
    return [
        f
        for name, v in RUNS.items()
        for base, step in sorted(wanted)
        if v.base_variant == base and any(e.step == step for e in v.evaluations)
        for f in run_score_files(name, step)
    ]


def methods_flag(wildcards, input):
    """--methods of workbook, figures and report, when the Methods table is made."""
    return f"--methods {input.methods}" if input.get("methods") else ""


def claims_flags(input):
    """--claims / --intervals of workbook and report, when the claims rule ran."""
    flags = [f"--claims {input.claims}"] if input.get("claims") else []
    if input.get("intervals"):
        flags.append(f"--intervals {input.intervals}")
    return " ".join(flags)


# ------------------------------------------------------------------ sequential design
# (claims_sequential; the rules are in sequential.smk)
SEQ_DIR = f"{R}/claims/sequential"
LAST_LOOK = SEQUENTIAL.looks - 1 if SEQUENTIAL else 0


def look_plans(k):
    """The plans of looks 0 .. k - 1 (each read once its checkpoint has run)."""
    return [load_plan(checkpoints.sequential_look.get(look=j).output[0]) for j in range(k)]


def look_score_files(k):
    """What look k reads: the configured runs' scores and the reserve runs looks 0 .. k - 1
    asked for."""
    extra = [
        f
        for name in added_runs(RESERVE, look_plans(k))
        for e in RESERVE[name].evaluations
        for f in run_score_files(name, e.step)
    ]
    return score_files() + extra


def claims_scores(wildcards):
    """The claims rule's scores: with a design, every look's (the last look's input)."""
    return look_score_files(LAST_LOOK) if SEQUENTIAL else score_files()


# the claims rule's extra inputs with a design: the last look and the added runs' rows
SEQ_CLAIMS_IN = (
    dict(sequential=f"{SEQ_DIR}/look{LAST_LOOK}.json", added=f"{SEQ_DIR}/added_runs.json")
    if SEQUENTIAL
    else {}
)


def sequential_flags():
    d = SEQUENTIAL
    return (
        f"--looks {d.looks} --max-replicates {d.max_replicates} --start {d.start} "
        f"--boundary {d.boundary} --alpha {d.alpha} --futility-power {d.power}"
        + ("" if d.futility else " --no-futility")
    )
