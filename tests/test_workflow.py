"""The Snakemake workflow: lint, dry runs of every preset, a real tiny run, reruns and variants.

The real run happens once per session in a copy of the repository (the ``tiny_run`` fixture
of conftest.py, so the checkout's own results/ stays untouched); the tests reuse that run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from base64 import urlsafe_b64decode
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from conftest import BIN, REPO, copy_repo, snakemake, snakemake_env

PRESETS = [
    "config.yaml",
    "configs/demo.yaml",
    "configs/cpu.yaml",
    "configs/tiny.yaml",
    "configs/release.yaml",
]


def jobs_of(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count."""
    lines = dry_run_output.splitlines()
    stats: dict[str, int] = {}
    try:
        start = next(i for i, ln in enumerate(lines) if ln.startswith("job ") and "count" in ln) + 2
    except StopIteration:
        return stats
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        stats[parts[0]] = int(parts[1])
    return stats


@pytest.mark.parametrize("preset", PRESETS)
def test_dry_run_every_preset(preset):
    t0 = time.perf_counter()
    r = snakemake(REPO, "-n", "--configfile", preset, "--directory", str(REPO))
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = jobs_of(r.stdout + r.stderr)
    print(f"{preset}: dry run {time.perf_counter() - t0:.1f} s, {sum(jobs.values())} jobs")


def test_dry_run_gives_train_and_separate_the_config_precision(tmp_path):
    """device.precision reaches every training and separation job as --precision: one
    vocabulary (auto|fp32|bf16), no translation to the old --amp."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(f"results: {tmp_path / 'results'}\n")  # every job, none up to date
    r = snakemake(REPO, "-n", "-p", "--configfile", "configs/tiny.yaml", str(extra))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    for verb in ("train", "separate"):
        lines = [line for line in out.splitlines() if f"hourglass-sep {verb} " in line]
        assert lines and all("--precision fp32" in line for line in lines), verb
    assert "--amp" not in out


def test_lint_is_clean():
    r = snakemake(REPO, "--lint", "--configfile", "configs/tiny.yaml")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "Lints for" not in out, out[-3000:]


def test_replicates_are_separate_jobs_and_evaluation_variants_do_not_retrain(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "replicates: 3\nrun_variants: [const-2stack, const-2stack-1win, grow-4stack-100]\n"
        "claims: null\nevaluation: {backend: fast_bss_eval}\n"
        # its own results folder: a demo already run in the checkout (README command 1
        # before command 2) must not make replicate 0 up to date
        f"results: {tmp_path / 'results'}\n"
    )
    r = snakemake(REPO, "-n", "-p", "--configfile", "configs/demo.yaml", str(extra))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    jobs = jobs_of(out)
    # 2 trained variants x 3 replicates; the evaluation variants train nothing
    assert jobs["train"] == 6, jobs
    for name, seed in [("const-2stack", 0), ("const-2stack.s1", 1), ("const-2stack.s2", 2)]:
        assert f"models/{name}/model.pt" in out and f"--seed {seed} " in out
    assert "--windows-per-batch 1" in out and "--backend mir_eval" in out
    assert jobs["subset_scores"] == 3  # grow-4stack-100: one per replicate


def test_unknown_run_in_a_claim_stops_the_workflow(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "claims:\n  - {id: x, statement: s, family: exploratory, compare: {a: ours, b: parkz},"
        " expect: greater}\n"
    )
    r = snakemake(REPO, "-n", "--configfile", "configs/tiny.yaml", str(bad))
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "config error at claims[x].compare.b: run 'parkz' is not a variant" in out


def test_bad_config_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: {source: mir1kk}\nvariants: {ours: {train: {lrr: 1}}}\n")
    r = snakemake(REPO, "-n", "--configfile", "configs/tiny.yaml", str(bad))
    assert r.returncode != 0
    assert "config error at dataset.source: 'mir1kk' is not one of" in r.stdout + r.stderr
    bad.write_text("variants: {ours: {train: {lrr: 1}}}\n")
    r = snakemake(REPO, "-n", "--configfile", "configs/tiny.yaml", str(bad))
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "config error at variants.ours.train" in out and "'lrr' was unexpected" in out


def test_tiny_run_products(tiny_run):
    res = tiny_run / "results" / "tiny"
    wb = openpyxl.load_workbook(res / "result.xlsx")
    assert {"experiments", "per_clip", "training", "speed", "references"} <= set(wb.sheetnames)
    ws = wb["experiments"]
    header = [c.value for c in ws[1]]
    rows = [dict(zip(header, [c.value for c in row])) for row in ws.iter_rows(min_row=2)]
    assert {r["variant"] for r in rows} == {"ours", "ours.s1", "voice-mask"}
    assert len(rows) == 5  # ours and its rerun (the report's row 13) at two steps + voice-mask
    numeric = [
        v
        for r in rows
        for k, v in r.items()
        if k and "GNSDR" in str(k) and isinstance(v, (int, float))
    ]
    assert numeric, "no measured GNSDR in the workbook"
    for name in ["metrics", "nsdr_distribution", "training_loss", "example", "speed"]:
        png = res / "figures" / f"{name}.png"
        assert png.stat().st_size > 5000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (res / "report.md").read_text()
    assert "Table 1" in report and "Table 2" in report
    # the claims of configs/tiny.yaml: verdicts, effects, forest plot, Claims section, sheet
    verdicts = (res / "claims" / "verdicts.tsv").read_text().splitlines()
    assert verdicts[0].startswith("id\t") and len(verdicts) == 3
    assert {line.split("\t")[0] for line in verdicts[1:]} == {
        "voice-mask-voice-fine",
        "ours-trains",
    }
    assert (res / "claims" / "effects.tsv").exists() and (res / "claims" / "intervals.tsv").exists()
    png = res / "figures" / "claims.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.index("## Claims") < report.index("## Table 1")
    assert "ours-trains" in report and "interval over" in report
    assert "\n\n| claim | the report's evidence |" in report  # a table needs a blank line above
    assert {"claims", "intervals"} <= set(wb.sheetnames)
    assert not list(res.rglob("*.part*")), "temporary files left behind"
    assert not (res / "estimates").exists() or not any((res / "estimates").rglob("*.npz")), (
        "temp() estimates kept"
    )


def test_the_readme_claims_plan_command_reads_a_run(tiny_run):
    """README: `hourglass-sep claims-plan results/demo` -- here on the tiny run's folder."""
    r = subprocess.run(
        [str(BIN / "hourglass-sep"), "claims-plan", "results/tiny"],
        cwd=tiny_run,
        capture_output=True,
        text=True,
        env=snakemake_env(),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "voice-mask-voice-fine [voice gnsdr] (confirmatory)" in r.stdout
    assert "ours-trains [voice gnsdr] (exploratory)" in r.stdout
    assert "Holm over" in r.stdout and "MDE" in r.stdout and "seeds" in r.stdout


def test_second_run_does_nothing(tiny_run):
    t0 = time.perf_counter()
    r = snakemake(tiny_run, "-n", "--configfile", "configs/tiny.yaml")
    assert r.returncode == 0
    assert "Nothing to be done" in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    print(f"no-op dry run: {time.perf_counter() - t0:.1f} s")


def test_changed_hyperparameter_retrains_that_variant_only(tiny_run, tmp_path):
    change = tmp_path / "change.yaml"
    change.write_text("variants: {voice-mask: {train: {lr: 0.05}}}\n")
    r = snakemake(tiny_run, "-n", "--configfile", "configs/tiny.yaml", str(change))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert jobs_of(out).get("train") == 1
    assert "variant=voice-mask" in out and "variant=ours" not in out


def test_new_variant_is_one_config_entry(tiny_run, tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "run_variants: [ours, voice-mask, ours-small]\n"
        "variants:\n  ours-small:\n    note: a smaller Ours\n"
        "    arch: {stacks: 1, channels: 64, growth: 0}\n"
        "    train: {iterations: 30, lr: 0.01}\n    evaluate: [{step: 30}]\n"
    )
    r = snakemake(tiny_run, "-n", "--configfile", "configs/tiny.yaml", str(extra))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    jobs = jobs_of(out)
    assert (
        jobs.get("train") == 1 and jobs.get("separate") == 2 and jobs.get("score") == 2
    )  # 2 shards
    assert (
        "variant=ours-small" in out
        and "variant=ours," not in out
        and "variant=voice-mask" not in out
    )
    r = snakemake(tiny_run, "--cores", "2", "--configfile", "configs/tiny.yaml", str(extra))
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    ws = openpyxl.load_workbook(tiny_run / "results" / "tiny" / "result.xlsx")["experiments"]
    header = [c.value for c in ws[1]]
    col = header.index("variant")
    assert "ours-small" in [row[col].value for row in ws.iter_rows(min_row=2)]


def test_new_variant_as_a_rule(tiny_run, tmp_path):
    rules = tiny_run / "my_rules.smk"
    rules.write_text(
        "use rule train as train_voice_mask_clipped with:\n"
        "    params:\n"
        '        extra="--grad-clip 5.0",\n'
        "    wildcard_constraints:\n"
        '        variant="voice-mask",\n'
        "\n\nruleorder: train_voice_mask_clipped > train\n"
    )
    extra = tmp_path / "rules.yaml"
    extra.write_text("extra_rules: [my_rules.smk]\n")
    # the new rule's params differ from what trained voice-mask: that variant (only) retrains
    r = snakemake(tiny_run, "-n", "--configfile", "configs/tiny.yaml", str(extra))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "rule train_voice_mask_clipped:" in out and "variant=ours" not in out
    r = snakemake(tiny_run, "--cores", "2", "-p", "--configfile", "configs/tiny.yaml", str(extra))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "rule train_voice_mask_clipped:" in out and "--grad-clip 5.0" in out
    info = json.loads((tiny_run / "results/tiny/models/voice-mask/train.json").read_text())
    assert info["train"]["grad_clip"] == 5.0


def test_failed_job_leaves_no_partial_output_and_names_its_log(tiny_run, tmp_path):
    bad = tmp_path / "diverge.yaml"
    bad.write_text(
        "run_variants: [ours, voice-mask, diverges]\n"
        "variants:\n  diverges:\n    arch: {stacks: 1, channels: 64, growth: 64}\n"
        "    train: {iterations: 30, lr: 1.0e+30}\n    evaluate: [{step: 30}]\n"
    )
    r = snakemake(tiny_run, "--cores", "2", "--configfile", "configs/tiny.yaml", str(bad))
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "results/tiny/logs/train_diverges.log" in out
    log = (tiny_run / "results/tiny/logs/train_diverges.log").read_text()
    assert "non-finite" in log.lower() and "step" in log
    model_dir = tiny_run / "results/tiny/models/diverges"
    assert not (model_dir / "model.pt").exists() and not (model_dir / "snapshots").exists()


# ----------------------------------------------------------------------------- interrupted runs
TINY = ("--cores", "2", "--configfile", "configs/tiny.yaml")


def _kill_when(work: Path, ready, timeout: float = 300) -> None:
    """Start the tiny preset, SIGKILL Snakemake and all its jobs as soon as ``ready()``."""
    proc = subprocess.Popen(
        [str(BIN / "snakemake"), *TINY],
        cwd=work,
        env=snakemake_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes the jobs too
    )
    t0 = time.monotonic()
    try:
        while not ready():
            assert proc.poll() is None, "the run ended before the moment to kill it"
            assert time.monotonic() - t0 < timeout, "the moment to kill never came"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _recorded_done(work: Path, models) -> dict[Path, int]:
    """The model files whose training job Snakemake recorded as finished, with their mtimes.

    A job SIGKILLed after its command wrote model.pt but before Snakemake saw the command
    end still carries Snakemake's "incomplete" markers on its outputs (file persistence:
    ``.snakemake/incomplete/<urlsafe base64 of the path>``), and ``rerun-incomplete`` of the
    default profile rightly runs it again; only models with no marked output in their
    directory count as finished.
    """
    marks = work / ".snakemake" / "incomplete"
    assert marks.is_dir(), f"no {marks}: Snakemake's bookkeeping of running jobs moved"
    running = [Path(urlsafe_b64decode(m.name).decode()) for m in marks.iterdir()]
    done = {}
    for model in models:
        folder = model.parent.relative_to(work)
        if not any(folder in key.parents for key in running):
            done[model] = model.stat().st_mtime_ns
    return done


def _tables(root: Path) -> dict[str, pd.DataFrame]:
    """summary, claims and per-clip score tables below ``root``, timings dropped."""
    out = {}
    for p in [root / "summary.tsv", *root.glob("claims/*.tsv"), *root.glob("scores/**/*.tsv")]:
        df = pd.read_csv(p, sep="\t")
        out[str(p.relative_to(root))] = df.drop(columns=["seconds"], errors="ignore")
    return out


def test_sigkill_mid_run_and_the_same_command_resumes(tiny_run, tmp_path):
    """SIGKILL while training, then again while scoring: the same command finishes the run
    (no --unlock), retrains no finished model and gives the uninterrupted run's tables."""
    work = copy_repo(tmp_path)
    res = work / "results" / "tiny"
    _kill_when(work, lambda: any(res.glob("models/*/work/*")))  # a training under way
    assert not any(res.glob("models/*/model.pt"))
    _kill_when(work, lambda: any(res.glob("logs/score_*")))  # scoring under way
    finished = _recorded_done(work, res.glob("models/*/model.pt"))
    assert finished, "no model had finished before the second kill"
    r = snakemake(work, *TINY)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "stale Snakemake lock" in out
    for p, mtime in finished.items():
        assert p.stat().st_mtime_ns == mtime, f"{p} was trained again"
    trained_now = jobs_of(out).get("train", 0)
    assert trained_now == 3 - len(finished)  # ours, ours.s1, voice-mask
    want, got = _tables(tiny_run.parent / "pristine"), _tables(res)
    assert sorted(got) == sorted(want)
    for name, df in want.items():
        pd.testing.assert_frame_equal(got[name], df, obj=name)


def test_tiny_preset_in_bf16_completes_with_finite_or_failed_scores(tmp_path):
    """precision auto (bf16 where the CPU has it: AMX, AVX512-BF16): how well the tiny
    networks train differs between CPUs, so only completion and honest scores are asserted."""
    work = copy_repo(tmp_path)
    (work / "auto.yaml").write_text("device: {precision: auto}\n")
    r = snakemake(work, *TINY, "auto.yaml")
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    res = work / "results" / "tiny"
    scores = pd.concat(pd.read_csv(p, sep="\t") for p in res.glob("scores/*/step*/*.tsv"))
    ok = scores["status"] == "ok"
    metrics = scores.loc[ok, [f"{s}_{m}" for s in ("voice", "accompaniment")
                              for m in ("sdr", "sir", "sar", "nsdr")]]  # fmt: skip
    assert np.isfinite(metrics.to_numpy(dtype=float)).all()
    assert (scores.loc[~ok, "status"].str.len() > 0).all()
    summary = pd.read_csv(res / "summary.tsv", sep="\t")
    gnsdr = summary[[c for c in summary.columns if c.endswith("_gnsdr")]].to_numpy(dtype=float)
    assert not np.isinf(gnsdr).any()
    used = json.loads((res / "models" / "ours" / "train.json").read_text())["precision"]
    print(f"tiny preset, precision auto: trained in {used}; {int(ok.sum())} of "
          f"{len(scores)} clip scores ok")  # fmt: skip
    for png in ("metrics", "nsdr_distribution", "claims"):
        assert (res / "figures" / f"{png}.png").exists()
