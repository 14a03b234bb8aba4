# Clip catalogue + split, then one spectrogram-cache file per split.


rule catalogue:
    input:
        dataset_marker(),
    output:
        f"{R}/data/catalogue.tsv",
    log:
        f"{R}/logs/catalogue.log",
    conda:
        CONDA_ENV
    params:
        root=lambda wc, input: os.path.dirname(input[0]) if len(input) else DATASET["local"],
        test_clips=f"--test-clips {DATASET['test_clips']}" if DATASET["test_clips"] else "",
        seed=DATASET["subset_seed"],
    shell:
        "hourglass-sep catalogue {params.root:q} -o {output} {params.test_clips} "
        "--subset-seed {params.seed} > {log} 2>&1"


rule spectrogram_cache:
    input:
        f"{R}/data/catalogue.tsv",
    output:
        f"{R}/data/cache/{{split}}.npz",
    log:
        f"{R}/logs/cache_{{split}}.log",
    benchmark:
        f"{R}/benchmarks/cache_{{split}}.tsv"
    conda:
        CONDA_ENV
    shell:
        "hourglass-sep cache --catalogue {input} --split {wildcards.split} -o {output} "
        "--no-progress > {log} 2>&1"
