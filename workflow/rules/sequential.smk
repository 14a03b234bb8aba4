# Sequential replicates (config claims_sequential; docs/statistics.md, "Sequential
# replicates"): after each look of the design the checkpoint sequential_look says which runs of
# undecided confirmatory claims get more seeds; the next look's input asks for exactly those
# reserve runs (common.smk: RESERVE), so Snakemake trains, separates and scores them, then
# looks again.  A rerun resumes: finished looks and trainings are files like any other.

from hourglass_sep.pipeline.sequential_runs import write_added_runs


# cheap bookkeeping: run where snakemake runs
localrules:
    added_runs_table,
    sequential_look,


rule added_runs_table:
    output:
        f"{SEQ_DIR}/added_runs.json",
    log:
        f"{R}/logs/added_runs_table.log",
    params:
        rows=experiment_rows(RESERVE, R, config["preset"]),
        preset=config["preset"],
    run:
        write_added_runs(params.rows, params.preset, output[0], log[0])


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
