# Separation and scoring, one job per (evaluated model, shard) — never one per clip.
# The mixture's own SDR (the NSDR baseline) depends on the clip only: computed once per dataset.
# With evaluation.backend "cached", so is the reference side of BSS Eval (correlations and
# Cholesky factors of the references, ~3.2 MB per clip): one file per shard, read by the
# baseline and by every score job.


REFERENCE_CACHE = (
    [f"{R}/scores/references/shard{{shard}}.npz"] if EVAL["backend"] == "cached" else []
)


rule references:
    input:
        catalogue=f"{R}/data/catalogue.tsv",
    output:
        f"{R}/scores/references/shard{{shard}}.npz",
    log:
        f"{R}/logs/references_{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/references_{{shard}}.tsv"
    conda:
        CONDA_ENV
    threads: EVAL["score_threads"]
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        shards=len(SHARDS),
    shell:
        "hourglass-sep references --catalogue {input.catalogue} "
        "--shard {wildcards.shard}/{params.shards} --workers {threads} --no-progress "
        "-o {output} > {log} 2>&1"


rule baseline:
    input:
        catalogue=f"{R}/data/catalogue.tsv",
        references=REFERENCE_CACHE,
    output:
        f"{R}/scores/baseline/shard{{shard}}.tsv",
    log:
        f"{R}/logs/baseline_{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/baseline_{{shard}}.tsv"
    conda:
        CONDA_ENV
    threads: EVAL["score_threads"]
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        shards=len(SHARDS),
        backend=EVAL["backend"],
        references=lambda wc, input: (
            f"--references {input.references}" if input.references else ""
        ),
    shell:
        "hourglass-sep baseline --catalogue {input.catalogue} --shard {wildcards.shard}/{params.shards} "
        "--backend {params.backend} {params.references} --workers {threads} -o {output} > {log} 2>&1"


rule separate:
    input:
        snapshots=model_snapshots,
        catalogue=f"{R}/data/catalogue.tsv",
    output:
        temp(f"{R}/estimates/{{variant}}/step{{step}}/shard{{shard}}.npz"),
    log:
        f"{R}/logs/separate_{{variant}}_step{{step}}_{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/separate_{{variant}}_step{{step}}_{{shard}}.tsv"
    wildcard_constraints:
        variant=name_pattern(n for n, v in ALL_RUNS.items() if not v.free),
    conda:
        CONDA_ENV
    threads: DEVICE["separate_threads"]
    resources:
        gpu=GPU,
        mem_mb=6000,
        runtime=120,
    params:
        model=model_snapshot,
        shards=len(SHARDS),
        schedule=eval_setting("schedule"),
        windows=eval_setting("windows_per_batch"),
        device=GPU_DEVICE,
        precision=PRECISION,
    shell:
        "hourglass-sep separate --model {params.model} --catalogue {input.catalogue} "
        "--shard {wildcards.shard}/{params.shards} --estimates {output} --schedule {params.schedule} "
        "--windows-per-batch {params.windows} --device {params.device} --precision {params.precision} --threads {threads} > {log} 2>&1"


# a training-free method (kind: repet-sim, rpca, oracle-*) separates without a model: the same
# estimates file, so scoring and everything after it are shared with the networks
rule separate_method:
    input:
        catalogue=f"{R}/data/catalogue.tsv",
    output:
        temp(f"{R}/estimates/{{variant}}/step{{step}}/shard{{shard}}.npz"),
    log:
        f"{R}/logs/separate_{{variant}}_step{{step}}_{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/separate_{{variant}}_step{{step}}_{{shard}}.tsv"
    wildcard_constraints:
        variant=name_pattern(FREE),
        step="0",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        method=lambda wc: RUNS[wc.variant].kind,
        settings=lambda wc: json.dumps(RUNS[wc.variant].settings, sort_keys=True),
        shards=len(SHARDS),
    shell:
        "hourglass-sep separate --method {params.method} --method-settings '{params.settings}' "
        "--catalogue {input.catalogue} --shard {wildcards.shard}/{params.shards} "
        "--estimates {output} --no-progress > {log} 2>&1"


rule score:
    input:
        estimates=f"{R}/estimates/{{variant}}/step{{step}}/shard{{shard}}.npz",
        baseline=f"{R}/scores/baseline/shard{{shard}}.tsv",
        catalogue=f"{R}/data/catalogue.tsv",
        references=REFERENCE_CACHE,
    output:
        f"{R}/scores/{{variant}}/step{{step}}/shard{{shard}}.tsv",
    log:
        f"{R}/logs/score_{{variant}}_step{{step}}_{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/score_{{variant}}_step{{step}}_{{shard}}.tsv"
    conda:
        CONDA_ENV
    threads: EVAL["score_threads"]
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        backend=eval_setting("backend"),
        shards=len(SHARDS),
        references=lambda wc, input: (
            f"--references {input.references}"
            if input.references and eval_setting("backend")(wc) == "cached"
            else ""
        ),
    shell:
        "hourglass-sep score --catalogue {input.catalogue} --estimates {input.estimates} "
        "--shard {wildcards.shard}/{params.shards} --baseline {input.baseline} "
        "--variant {wildcards.variant} --step {wildcards.step} "
        "--backend {params.backend} {params.references} --workers {threads} -o {output} > {log} 2>&1"
