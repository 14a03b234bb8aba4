"""Snakemake through a real (throw-away, single-node) SLURM cluster.

The cluster comes from tests/slurm_cluster.py: it installs Debian's slurm-wlm + munge when it is
missing and we are root with apt-get, and the tests skip with the reason otherwise.  The jobs go
through `snakemake --workflow-profile <profiles/slurm fitted to the test node>` (GPU requests set
to 0: the node has no GPU), so the tests also check that profiles/slurm parses and applies.

Run them alone with `pytest -m slurm tests/test_slurm.py`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import slurm_cluster  # noqa: E402
from conftest import copy_repo  # noqa: E402
from slurm_cluster import (  # noqa: E402
    SLURM_PROFILE,
    TINY_GROUPS,
    SlurmUnavailable,
    group_args,
    local_slurm_cluster,
    make_test_profile,
    run_workflow_on_slurm,
)

# ---------------------------------------------------------------- without a cluster (fast)


def test_missing_slurm_without_root_is_a_skip_reason(monkeypatch):
    monkeypatch.setattr(slurm_cluster, "missing_programs", lambda: ["slurmctld", "munged"])
    monkeypatch.setattr(slurm_cluster.os, "geteuid", lambda: 1000)
    with pytest.raises(SlurmUnavailable, match="slurmctld, munged.*not root"):
        slurm_cluster.ensure_slurm_installed()
    with pytest.raises(SlurmUnavailable, match="not allowed"):
        slurm_cluster.ensure_slurm_installed(install=False)


def test_test_profile_fits_profiles_slurm_to_the_node(tmp_path):
    import yaml

    info = slurm_cluster.write_slurm_conf(
        tmp_path / "c", cpus=2, real_memory_mb=8000, ports=(7001, 7002)
    )
    conf = info.conf.read_text()
    assert "NodeAddr=127.0.0.1" in conf and "CPUs=2 RealMemory=8000" in conf
    assert "SlurmctldPort=7001" in conf and "AccountingStorageType=accounting_storage/none" in conf
    assert f"SlurmdSpoolDir={info.spool}" in conf and len(str(info.spool)) <= 60
    if info.spool.parent != info.workdir:  # moved to a short /tmp path (socket path length)
        shutil.rmtree(info.spool)
    assert (info.workdir / "bin" / "srun").stat().st_mode & 0o111
    env = info.env({"PATH": "/usr/bin"})
    assert env["SLURM_CONF"] == str(info.conf) == env[slurm_cluster.SRUN_SHIM_VAR]
    assert env["PATH"].startswith(str(info.workdir / "bin"))

    base = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    assert base["executor"] == "slurm" and base["slurm-status-command"] == "squeue"
    gpu_rules = {rule for rule, res in base["set-resources"].items() if res.get("gpu")}
    assert {"train", "separate"} <= gpu_rules

    test = yaml.safe_load((make_test_profile(tmp_path / "p", info) / "config.yaml").read_text())
    for rule, res in test["set-resources"].items():
        assert res.get("gpu", 0) == 0, rule
        assert (
            "slurm_partition" not in res and "slurm_account" not in res and "gpu_model" not in res
        )
        assert res.get("mem_mb", 0) <= 4000, rule  # 8000 MB / 2 CPUs
    assert test["slurm-init-seconds-before-status-checks"] == 2
    assert test["max-threads"] == 2


# ---------------------------------------------------------------- on the local cluster


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    with contextlib.ExitStack() as stack:
        try:
            info = stack.enter_context(local_slurm_cluster(tmp_path_factory.mktemp("slurm")))
        except SlurmUnavailable as exc:
            pytest.skip(f"no local SLURM cluster: {exc}")
        yield info


def _squeue_states(info, jobids):
    """{jobid: state} from squeue (finished jobs stay listed for MinJobAge=600 s)."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", ",".join(jobids), "-o", "%i %T %j"],
        capture_output=True,
        text=True,
        env=info.env(),
        timeout=30,
    ).stdout
    return {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}


def _submitted_in_ctld_log(info):
    text = info.slurmctld_log.read_text(errors="replace")
    return set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", text))


# A GPU rule named like the real workflow's (`train`, gpu=1 and more threads than the test node
# has: the test profile turns both down), a CPU rule (`score`) and a local target rule.
HAPPY = textwrap.dedent(
    """
    localrules: all

    rule all:
        input: "out/score.txt"

    rule train:
        output: "out/train.txt"
        threads: 4
        resources: gpu=1
        log: "logs/train.log"
        shell: "echo 'threads={threads} gpu={resources.gpu} mem={resources.mem_mb}' "
               "\\"job=$SLURM_JOB_ID cpus=$SLURM_CPUS_PER_TASK\\" > {output} 2> {log}"

    rule score:
        input: "out/train.txt"
        output: "out/score.txt"
        log: "logs/score.log"
        shell: "(cat {input}; echo scored) > {output} 2> {log}"
    """
)


@pytest.mark.slurm
@pytest.mark.slow
def test_workflow_runs_through_sbatch(slurm, tmp_path):
    (tmp_path / "Snakefile").write_text(HAPPY)
    run = run_workflow_on_slurm(tmp_path, tmp_path / "Snakefile", None, cluster=slurm, timeout=600)
    assert run.returncode == 0, run.output[-6000:] + "\n" + slurm.logs(30)

    # both jobs went through sbatch: the plugin's log lines, squeue and slurmctld agree
    jobids = run.slurm_jobids
    assert len(jobids) == 2, run.output[-4000:]
    assert set(jobids) <= _submitted_in_ctld_log(slurm)
    states = _squeue_states(slurm, jobids)
    assert set(states.values()) == {"COMPLETED"}, states

    first = (tmp_path / "out/train.txt").read_text()
    assert "gpu=0" in first  # the test profile turned the GPU request off
    # ran inside the first SLURM job, with its 4 threads capped to the node's CPUs (max-threads)
    assert f"job={jobids[0]}" in first and f"threads={slurm.cpus} " in first
    assert f"cpus={slurm.cpus}" in first
    assert (tmp_path / "out/score.txt").read_text().rstrip().endswith("scored")

    # the test profile came from profiles/slurm: the per-rule memory was applied (capped to the
    # node)
    assert (SLURM_PROFILE / "config.yaml").exists()
    mem = int(re.search(r"mem=(\d+)", first).group(1))
    assert mem > 2000  # profiles/slurm's train request, not the 2000 MB default
    print(
        f"[slurm] cluster start {slurm.startup_seconds:.1f} s, two-job workflow {run.seconds:.1f} s"
    )


FAILING = textwrap.dedent(
    """
    localrules: all

    rule all:
        input: "out/summary.txt"

    rule prepare:
        output: "out/prepared.txt"
        log: "logs/prepare.log"
        shell: "echo prepared > {output} 2> {log}"

    rule score:
        input: data="out/prepared.txt", switch="switch.txt"
        output: "out/score.txt"
        log: "logs/score.log"
        shell:
            "echo partial > {output}; "
            "if grep -q fail {input.switch}; then "
            "echo 'score: deliberate failure' > {log}; exit 3; fi; "
            "cat {input.data} > {output}; echo scored >> {output}; echo ok > {log}"

    rule aggregate:
        input: "out/score.txt"
        output: "out/summary.txt"
        log: "logs/aggregate.log"
        shell: "cat {input} > {output} 2> {log}"
    """
)


@pytest.mark.slurm
@pytest.mark.slow
def test_failure_is_reported_and_rerun_resumes(slurm, tmp_path):
    (tmp_path / "Snakefile").write_text(FAILING)
    (tmp_path / "switch.txt").write_text("fail\n")
    run = run_workflow_on_slurm(tmp_path, tmp_path / "Snakefile", None, cluster=slurm, timeout=600)
    assert run.returncode != 0, run.output[-4000:]
    out = run.output
    assert "Error in rule score" in out, out[-4000:]
    assert "logs/score.log" in out, out[-4000:]  # the rule's log path is reported ...
    assert "score: deliberate failure" in out, out[-4000:]  # ... and shown (show-failed-logs)
    assert not (tmp_path / "out/score.txt").exists(), "the failed job's partial output was kept"
    assert (tmp_path / "out/prepared.txt").exists()
    assert not (tmp_path / "out/summary.txt").exists()
    failed_ids = run.slurm_jobids
    assert len(failed_ids) == 2, out[-4000:]
    assert _squeue_states(slurm, failed_ids) == {
        failed_ids[0]: "COMPLETED",
        failed_ids[1]: "FAILED",
    }

    # fix the input: only the remainder (score, aggregate) runs, prepare is not redone
    (tmp_path / "switch.txt").write_text("ok\n")
    rerun = run_workflow_on_slurm(
        tmp_path, tmp_path / "Snakefile", None, cluster=slurm, timeout=600
    )
    assert rerun.returncode == 0, rerun.output[-4000:]
    rules = set(rerun.submitted_rules())
    assert {"score", "aggregate"} <= rules and "prepare" not in rules, rerun.output[-4000:]
    assert len(rerun.slurm_jobids) == 2
    assert (tmp_path / "out/summary.txt").read_text() == "prepared\nscored\n"


@pytest.mark.slurm
@pytest.mark.slow
def test_tiny_preset_through_sbatch(slurm, tmp_path):
    """The real workflow's tiny preset, every job submitted with sbatch.

    The cheap data and result rules are grouped (TINY_GROUPS): one SLURM job each, not one
    per rule, since every job costs Snakemake start-ups and status polling.
    """
    import openpyxl

    work = copy_repo(tmp_path / "repo")
    run = run_workflow_on_slurm(
        work,
        "Snakefile",
        "configs/tiny.yaml",
        ["-p", *group_args(TINY_GROUPS, node_cpus=slurm.cpus)],
        cluster=slurm,
        timeout=900,
    )
    print(f"tiny preset through SLURM: {run.seconds:.0f} s, {len(run.slurm_jobids)} sbatch jobs")
    assert run.returncode == 0, run.output[-6000:] + slurm.logs(30)
    ids = run.slurm_jobids
    assert len(ids) >= 8, run.output[-3000:]
    assert set(ids) <= _submitted_in_ctld_log(slurm)  # the controller saw every submission
    states = _squeue_states(slurm, ids)
    assert set(states) == set(ids) and set(states.values()) == {"COMPLETED"}, states
    rules = set(run.submitted_rules())
    assert {"train", "separate", "score"} <= rules
    # each job's resources as submitted (the profile's per-rule requests, GPUs off on this node)
    # the log shows each job: its rule, the resources asked for, and its sbatch job id
    blocks = re.findall(
        r"^\s*rule (\w+):\n((?:.|\n)*?)^\s*resources: ([^\n]*)", run.output, flags=re.M
    )
    for rule, _, resources in blocks:
        print(f"submitted rule {rule}: {resources}")
    print(
        "\n".join(line for line in run.output.splitlines() if "submitted with SLURM jobid" in line)
    )
    train = [res for rule, _, res in blocks if rule == "train"]
    assert train and all("gpu=0" in r and "mem_mb=" in r and "runtime=" in r for r in train), train
    wb = openpyxl.load_workbook(work / "results" / "tiny" / "result.xlsx")
    # header + ours@15, ours@30, its seed-1 replicate ours.s1@15/@30 (the report's row 13),
    # voice-mask
    assert wb["experiments"].max_row == 6
