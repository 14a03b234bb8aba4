# One training job per trained run.  Every hyper-parameter reaches the job through params:, so a
# changed variant retrains and the others do not.  The flags are made from the fields of
# ArchConfig / TrainConfig (hourglass_sep/nets/settings.py; see docs/architecture.md).  The checkpoint
# folder (work/) is not an output: Snakemake keeps it when a job fails or is interrupted, and the
# rerun resumes from it.


rule train:
    input:
        cache=f"{R}/data/cache/train.npz",
    output:
        model=f"{R}/models/{{variant}}/model.pt",
        snapshots=directory(f"{R}/models/{{variant}}/snapshots"),
        history=f"{R}/models/{{variant}}/history.csv",
        info=f"{R}/models/{{variant}}/train.json",
    log:
        f"{R}/logs/train_{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/train_{{variant}}.tsv"
    wildcard_constraints:
        variant="|".join(re.escape(name) for name in ALL_TRAINED),
    priority: lambda wildcards: TRAIN_PRIORITY.get(wildcards.get("variant"), 0)
    conda:
        CONDA_ENV
    threads: DEVICE["train_threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=24 * 60,
    params:
        arch=lambda wc: arch_flags(ALL_RUNS[wc.variant].arch),
        train=lambda wc: train_flags(
            ALL_RUNS[wc.variant].train, ALL_RUNS[wc.variant].snapshot_steps
        ),
        workdir=lambda wc: f"{R}/models/{wc.variant}/work",
        device=GPU_DEVICE,
        allow_cpu=ALLOW_CPU,
        precision=PRECISION,
        extra="",
    shell:
        "hourglass-sep train --cache {input.cache} -o {output.model} --snapshot-dir {output.snapshots} "
        "--history {output.history} --info {output.info} --workdir {params.workdir} --restart-on-mismatch "
        "{params.arch} {params.train} --device {params.device} {params.allow_cpu} --threads {threads} "
        "--precision {params.precision} --no-progress {params.extra} > {log} 2>&1"
