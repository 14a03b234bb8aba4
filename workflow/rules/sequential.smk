# Sequential replicates (config claims_sequential; docs/statistics.md, "Sequential
# replicates"): after each look of the design the checkpoint sequential_look says which runs of
# undecided confirmatory claims get more seeds; the next look's input asks for exactly those
# reserve runs (common.smk: RESERVE), so Snakemake trains, separates and scores them, then
# looks again.  A rerun resumes: finished looks and trainings are files like any other.

from hourglass_sep.claims.looks import load_plan
from hourglass_sep.pipeline.sequential_runs import added_runs, write_added_runs

SEQ_DIR = f"{R}/claims/sequential"


# cheap bookkeeping: run where snakemake runs
localrules:
    added_runs_table,
    sequential_look,


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


rule added_runs_table:
    output:
        f"{SEQ_DIR}/added_runs.json",
    params:
        rows=experiment_rows(RESERVE, R, config["preset"]),
        preset=config["preset"],
    run:
        write_added_runs(params.rows, params.preset, output[0])


checkpoint sequential_look:
    input:
        claims=f"{R}/claims/claims.yaml",
        experiments=f"{R}/experiments.json",
        added=f"{SEQ_DIR}/added_runs.json",
        scores=lambda wc: look_score_files(int(wc.look)),
    output:
        f"{SEQ_DIR}/look{{look}}.json",
    log:
        f"{R}/logs/sequential_look{{look}}.log",
    wildcard_constraints:
        look=r"\d+",
    conda:
        CONDA_ENV
    params:
        design=sequential_flags() if SEQUENTIAL else "",
        seed=config["claims_seed"],
    shell:
        "hourglass-sep claims-look --claims {input.claims} --experiments {input.experiments} "
        "{input.added} --scores {input.scores} --seed {params.seed} --look {wildcards.look} "
        "{params.design} -o {output} > {log} 2>&1"
