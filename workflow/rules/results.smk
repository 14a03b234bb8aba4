# Aggregation into result.xlsx, figures, the Markdown report and the speed sheet.


# cheap bookkeeping: run where snakemake runs, not as cluster jobs
localrules:
    experiments_table,
    methods_table,
    subset_scores,
    claims_file,
    claims,
    aggregate,
    workbook,
    figures,
    report,


FIGURE_NAMES = ["metrics", "nsdr_distribution", "training_loss", "example", "speed"]
FIGURE_NAMES += ["methods"] if METHODS_ROWS else []  # the Methods table's figure
FIGURES = [f"{R}/figures/{name}.png" for name in FIGURE_NAMES]
# the claims' products (rule claims), when the config has a claims: section
CLAIMS_OUT = (
    dict(
        verdicts=f"{R}/claims/verdicts.tsv",
        effects=f"{R}/claims/effects.tsv",
        intervals=f"{R}/claims/intervals.tsv",
        figure=f"{R}/figures/claims.png",
        page=f"{R}/claims/claims.html",
    )
    if CLAIMS
    else {}
)
# the Claims page of `snakemake --report` (written by rule report beside report.md)
CLAIMS_PAGE = (
    dict(
        claims_page=report(
            CLAIMS_OUT["page"],
            caption="../../reports/captions/claims_table.rst",
            category="Claims",
            labels={"product": "verdict table", "format": "HTML"},
        )
    )
    if CLAIMS
    else {}
)
EXAMPLE_STEP = RUNS[EXAMPLE].evaluations[-1].step
# the Methods table (methods_table: in config): its rows resolved against the runs (common.smk)
METHODS_OUT = dict(methods=f"{R}/methods.tsv") if METHODS_ROWS else {}


rule experiments_table:
    input:
        infos=expand(f"{R}/models/{{variant}}/train.json", variant=TRAINED),
    output:
        f"{R}/experiments.json",
    log:
        f"{R}/logs/experiments_table.log",
    conda:
        CONDA_ENV
    params:
        rows=EXPERIMENT_ROWS,  # the runs of the DAG (common.smk), not resolved again
        preset=config["preset"],
        scale=config["scale"],
        dataset=DATASET["source"],
        test_clips=DATASET["test_clips"],
    script:
        "../scripts/experiments_table.py"


rule subset_scores:
    input:
        scores=subset_inputs,
        catalogue=f"{R}/data/catalogue.tsv",
    output:
        f"{R}/scores/{{variant}}/step{{step}}/subset.tsv",
    log:
        f"{R}/logs/subset_{{variant}}_step{{step}}.log",
    conda:
        CONDA_ENV
    params:
        clips=lambda wc: RUNS[wc.variant].subset,
        seed=DATASET["subset_seed"],
        of=MIR1K_TEST_CLIPS,
    shell:
        "hourglass-sep subset-scores --scores {input.scores} --catalogue {input.catalogue} "
        "--clips {params.clips} --of {params.of} --seed {params.seed} "
        "--variant {wildcards.variant} "
        "-o {output} > {log} 2>&1"


rule claims_file:
    output:
        f"{R}/claims/claims.yaml",
    log:
        f"{R}/logs/claims_file.log",
    params:
        claims=CLAIMS_RUN[0],
        dropped=CLAIMS_RUN[1],
    run:
        write_claims_file(params.claims, output[0], log[0], params.dropped)


rule claims:
    input:
        **SEQ_CLAIMS_IN,
        claims=f"{R}/claims/claims.yaml",
        experiments=f"{R}/experiments.json",
        speed=f"{R}/speed.tsv",
        scores=claims_scores,
    output:
        verdicts=f"{R}/claims/verdicts.tsv",
        effects=f"{R}/claims/effects.tsv",
        intervals=f"{R}/claims/intervals.tsv",
        figure=report(
            f"{R}/figures/claims.png",
            caption="../../reports/captions/claims.rst",
            category="Claims",
            labels={"product": "forest plot", "format": "PNG"},
        ),
    log:
        f"{R}/logs/claims.log",
    conda:
        CONDA_ENV
    params:
        seed=config["claims_seed"],
        prior=(
            ""
            if config.get("claims_seed_sd_prior") is None
            else f"--seed-sd-prior {config['claims_seed_sd_prior']}"
        ),
        # a sequential design: its added runs' rows and its last look's verdicts
        sequential=lambda wc, input: (
            f"--sequential {input.sequential}" if input.get("sequential") else ""
        ),
        added=lambda wc, input: input.get("added", ""),
    shell:
        "hourglass-sep claims --claims {input.claims} --experiments {input.experiments} "
        "{params.added} --speed {input.speed} --scores {input.scores} --seed {params.seed} "
        "{params.prior} {params.sequential} "
        "-o {output.verdicts} --effects {output.effects} --intervals {output.intervals} "
        "--figure {output.figure} > {log} 2>&1"


rule methods_table:
    input:
        experiments=f"{R}/experiments.json",
        catalogue=f"{R}/data/catalogue.tsv",
        scores=methods_score_files(),
    output:
        f"{R}/methods.tsv",
    log:
        f"{R}/logs/methods_table.log",
    conda:
        CONDA_ENV
    params:
        rows=json.dumps(METHODS_ROWS),
        oracle=f"--oracle {METHODS_ORACLE}" if METHODS_ORACLE else "",
        benchmarks=f"{R}/benchmarks",
        seed=config["claims_seed"],
    shell:
        "hourglass-sep methods --experiments {input.experiments} --catalogue {input.catalogue} "
        "--scores {input.scores} --benchmarks {params.benchmarks} --rows '{params.rows}' "
        "{params.oracle} --seed {params.seed} -o {output} > {log} 2>&1"


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
        # config speed: {repeats, warmup, indifference, clips, seconds} -> --repeats N ...
        timing=" ".join(f"--{k} {v}" for k, v in (config.get("speed") or {}).items()),
    shell:
        "hourglass-sep speed --model {params.model} --catalogue {input.catalogue} "
        "--benchmarks {params.benchmarks} --device {params.device} --threads {threads} "
        "{params.timing} -o {output} > {log} 2>&1"


rule workbook:
    input:
        **METHODS_OUT,
        experiments=f"{R}/experiments.json",
        summary=f"{R}/summary.tsv",
        speed=f"{R}/speed.tsv",
        scores=score_files(),
        claims=CLAIMS_OUT.get("verdicts", []),
        intervals=CLAIMS_OUT.get("intervals", []),
    output:
        report(
            f"{R}/result.xlsx", caption="../../reports/captions/workbook.rst", category="Results"
        ),
    log:
        f"{R}/logs/workbook.log",
    conda:
        CONDA_ENV
    params:
        claims=lambda wc, input: claims_flags(input),
        methods=methods_flag,
    shell:
        "hourglass-sep workbook --experiments {input.experiments} --summary {input.summary} "
        "--speed {input.speed} --scores {input.scores} {params.claims} {params.methods} "
        "-o {output} > {log} 2>&1"


rule figures:
    input:
        **METHODS_OUT,
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
        methods=methods_flag,
    shell:
        "hourglass-sep figures --experiments {input.experiments} --summary {input.summary} "
        "--speed {input.speed} --scores {input.scores} --example-model {params.model} "
        "--catalogue {input.catalogue} {params.methods} -o {params.outdir} > {log} 2>&1"


rule report:
    input:
        **METHODS_OUT,
        experiments=f"{R}/experiments.json",
        summary=f"{R}/summary.tsv",
        speed=f"{R}/speed.tsv",
        figures=FIGURES,
        claims=CLAIMS_OUT.get("verdicts", []),
        intervals=CLAIMS_OUT.get("intervals", []),
        claims_figure=CLAIMS_OUT.get("figure", []),
        template=os.path.join(workflow.basedir, "reports/report.md.j2"),
    output:
        **CLAIMS_PAGE,
        md=report(f"{R}/report.md", caption="../../reports/captions/report.rst", category="Results"),
    log:
        f"{R}/logs/report.log",
    conda:
        CONDA_ENV
    params:
        figdir=lambda wc, input: os.path.dirname(input.figures[0]),
        claims=lambda wc, input: claims_flags(input),
        page=f"--claims-html {CLAIMS_OUT['page']}" if CLAIMS else "",
        methods=methods_flag,
    shell:
        "hourglass-sep report --experiments {input.experiments} --summary {input.summary} "
        "--speed {input.speed} --figures {params.figdir} --template {input.template} "
        "{params.claims} {params.page} {params.methods} -o {output.md} > {log} 2>&1"
