# Singing-voice separation with stacked hourglass networks: the whole benchmark, one command.
#
#   snakemake --cores all                                   # paper scale, real MIR-1K (GPU box)
#   snakemake --cores all --configfile configs/demo.yaml    # synthetic corpus, laptop, minutes
#   snakemake --cores all --configfile configs/cpu.yaml     # real MIR-1K at CPU scale
#   snakemake --workflow-profile profiles/slurm ...         # a SLURM cluster
#
# The rules are thin calls of the `hourglass-sep` CLI (package hourglass_sep/);
# one topic per file in workflow/rules/.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "reports/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/sequential.smk"
include: "workflow/rules/results.smk"


for extra in config.get("extra_rules") or []:

    include: extra


rule all:
    default_target: True
    input:
        workbook=f"{R}/result.xlsx",
        report=f"{R}/report.md",
        figures=FIGURES,
        speed=f"{R}/speed.tsv",
