# The clips: the synthetic corpus, the real MIR-1K (download with mirrors + md5), or a local copy.


rule synth_corpus:
    output:
        marker=f"{synth_root()}/synth.json",
    log:
        "logs/synth_corpus.log",
    conda:
        CONDA_ENV
    threads: 2
    params:
        dest=lambda wc, output: os.path.dirname(output.marker),
        seed=DATASET["synthetic"]["seed"],
        singers=DATASET["synthetic"]["singers"],
        songs=DATASET["synthetic"]["songs"],
        clips=DATASET["synthetic"]["clips"],
        min_s=DATASET["synthetic"]["min_seconds"],
        max_s=DATASET["synthetic"]["max_seconds"],
    shell:
        "hourglass-sep synth --dest {params.dest} --seed {params.seed} --singers {params.singers} "
        "--songs {params.songs} --clips {params.clips} --min-seconds {params.min_s} "
        "--max-seconds {params.max_s} --jobs {threads} > {log} 2>&1"


rule fetch_mir1k:
    output:
        marker="resources/mir1k/MIR-1K/.verified",
    log:
        "logs/fetch_mir1k.log",
    retries: 1
    conda:
        CONDA_ENV
    params:
        urls=" ".join(f"--url {u}" for u in DATASET["urls"]),
        md5=DATASET["md5"],
    shell:
        "hourglass-sep fetch-mir1k --dest resources/mir1k {params.urls} --md5 {params.md5} "
        "> {log} 2>&1"


rule import_local_mir1k:
    output:
        marker="resources/mir1k-local/MIR-1K/.verified",
    log:
        "logs/import_local_mir1k.log",
    conda:
        CONDA_ENV
    params:
        archive=DATASET["local"] or "",
    shell:
        "hourglass-sep fetch-mir1k --dest resources/mir1k-local --archive {params.archive:q} "
        "> {log} 2>&1"
