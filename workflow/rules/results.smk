# Aggregation into result.xlsx, figures, the Markdown report and the speed sheet.


# cheap bookkeeping: run where snakemake runs, not as cluster jobs
localrules:
    experiments_table,
    aggregate,
    workbook,
    figures,
    report,


FIGURE_NAMES = ["metrics", "nsdr_distribution", "training_loss", "example", "speed"]
FIGURES = [f"{R}/figures/{name}.png" for name in FIGURE_NAMES]
EXAMPLE_STEP = VARIANTS[EXAMPLE].evaluations[-1].step


rule experiments_table:
    input:
        infos=expand(f"{R}/models/{{variant}}/train.json", variant=list(VARIANTS)),
    output:
        f"{R}/experiments.json",
    log:
        f"{R}/logs/experiments_table.log",
    conda:
        CONDA_ENV
    params:
        variants={name: config["variants"][name] for name in VARIANTS},
        preset=config["preset"],
        scale=config["scale"],
        dataset=DATASET["source"],
        test_clips=DATASET["test_clips"],
        results=lambda wc, output: os.path.dirname(output[0]),
    script:
        "../scripts/experiments_table.py"


rule aggregate:
    input:
        score_files(),
    output:
        f"{R}/summary.tsv",
    log:
        f"{R}/logs/aggregate.log",
    conda:
        CONDA_ENV
    shell:
        "hourglass-sep aggregate --scores {input} -o {output} > {log} 2>&1"


rule speed:
    input:
        snapshots=f"{R}/models/{EXAMPLE}/snapshots",
        catalogue=f"{R}/data/catalogue.tsv",
        scores=score_files(),
    output:
        report(
            f"{R}/speed.tsv",
            caption="../../reports/captions/speed_table.rst",
            category="Results",
        ),
    log:
        f"{R}/logs/speed.log",
    conda:
        CONDA_ENV
    threads: DEVICE["separate_threads"]
    resources:
        gpu=GPU,
    params:
        model=f"{R}/models/{EXAMPLE}/snapshots/step{EXAMPLE_STEP}.pt",
        benchmarks=f"{R}/benchmarks",
        device=GPU_DEVICE,
    shell:
        "hourglass-sep speed --model {params.model} --catalogue {input.catalogue} "
        "--benchmarks {params.benchmarks} --device {params.device} --threads {threads} "
        "-o {output} > {log} 2>&1"


rule workbook:
    input:
        experiments=f"{R}/experiments.json",
        summary=f"{R}/summary.tsv",
        speed=f"{R}/speed.tsv",
        scores=score_files(),
    output:
        report(
            f"{R}/result.xlsx", caption="../../reports/captions/workbook.rst", category="Results"
        ),
    log:
        f"{R}/logs/workbook.log",
    conda:
        CONDA_ENV
    shell:
        "hourglass-sep workbook --experiments {input.experiments} --summary {input.summary} "
        "--speed {input.speed} --scores {input.scores} -o {output} > {log} 2>&1"


rule figures:
    input:
        experiments=f"{R}/experiments.json",
        summary=f"{R}/summary.tsv",
        speed=f"{R}/speed.tsv",
        snapshots=f"{R}/models/{EXAMPLE}/snapshots",
        catalogue=f"{R}/data/catalogue.tsv",
        scores=score_files(),
    output:
        [
            report(f, caption=f"../../reports/captions/{n}.rst", category="Figures")
            for n, f in zip(FIGURE_NAMES, FIGURES)
        ],
    log:
        f"{R}/logs/figures.log",
    conda:
        CONDA_ENV
    params:
        outdir=lambda wc, output: os.path.dirname(output[0]),
        model=f"{R}/models/{EXAMPLE}/snapshots/step{EXAMPLE_STEP}.pt",
    shell:
        "hourglass-sep figures --experiments {input.experiments} --summary {input.summary} "
        "--speed {input.speed} --scores {input.scores} --example-model {params.model} "
        "--catalogue {input.catalogue} -o {params.outdir} > {log} 2>&1"


rule report:
    input:
        experiments=f"{R}/experiments.json",
        summary=f"{R}/summary.tsv",
        speed=f"{R}/speed.tsv",
        figures=FIGURES,
        template=os.path.join(workflow.basedir, "reports/report.md.j2"),
    output:
        report(f"{R}/report.md", caption="../../reports/captions/report.rst", category="Results"),
    log:
        f"{R}/logs/report.log",
    conda:
        CONDA_ENV
    params:
        figdir=lambda wc, input: os.path.dirname(input.figures[0]),
    shell:
        "hourglass-sep report --experiments {input.experiments} --summary {input.summary} "
        "--speed {input.speed} --figures {params.figdir} --template {input.template} "
        "-o {output} > {log} 2>&1"
