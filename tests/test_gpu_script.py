"""The paper-scale GPU script (benchmarks/gpu_paper_scale.sh) end to end in its --tiny setting.

Prep packs a synthetic corpus; the run rebuilds the cache, times two step settings, trains in
two sessions (calibration + resume), separates and scores, all on the CPU.  About a minute
on a loaded 2-core machine.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hourglass_sep import cli
from hourglass_sep.errors import UserError

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_paper_scale.sh"


def _module():
    spec = importlib.util.spec_from_file_location(
        "gpu_paper_scale", REPO / "benchmarks" / "gpu_paper_scale.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sh(*args: str, out: Path | None = None) -> subprocess.CompletedProcess:
    # one thread: on a busy 2-core machine a second one mostly waits for the first
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("GPU_PAPER_T0", None)
    if out is not None:
        env["OUT"] = str(out)
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> tuple[Path, Path]:
    """(synthetic corpus, the folder prep packed from it)."""
    tmp = tmp_path_factory.mktemp("gpu")
    corpus, inputs = tmp / "corpus", tmp / "inputs"
    argv = ["synth", "--dest", str(corpus), "--singers", "3", "--songs", "1", "--clips", "2"]
    assert cli.main([*argv, "--min-seconds", "3", "--max-seconds", "4", "--no-progress"]) == 0
    prep = ["--prep", "--mir1k", str(corpus), "--dest", str(inputs), "--test-clips", "2"]
    done = _sh(*prep, "--no-wheels")
    assert "total sent by one device call" in done.stdout
    return corpus, inputs


def test_prep_packs_train_at_8k_and_test_lossless(packed):
    corpus, inputs = packed
    manifest = json.loads((inputs / "manifest.json").read_text())
    splits = [c["split"] for c in manifest["clips"]]
    assert splits.count("train") == 4 and splits.count("test") == 2
    for c in manifest["clips"]:
        path = inputs / "Wavfile" / f"{c['clip']}.flac"
        data = path.read_bytes()
        assert len(data) == c["bytes"] and hashlib.md5(data).hexdigest() == c["md5"]
        info = sf.info(str(path))
        if c["split"] == "train":
            assert info.samplerate == 8000 and c["source_sr"] == 16000
        else:  # the original samples, bit for bit
            packed_audio, sr = sf.read(str(path), dtype="int16")
            original, sr0 = sf.read(str(corpus / "Wavfile" / f"{c['clip']}.wav"), dtype="int16")
            assert sr == sr0 and np.array_equal(packed_audio, original)


def test_tiny_run_end_to_end(packed, tmp_path):
    _corpus, inputs = packed
    out = tmp_path / "out"
    # fp32: how well 4 steps train in bf16 depends on the CPU (AMX vs AVX512-BF16)
    done = _sh("--tiny", "--inputs", str(inputs), "--precision", "fp32", out=out)
    assert "tiny check (not paper scale)" in done.stdout
    s = json.loads((out / "gpu_paper_scale.json").read_text())
    assert [r["setting"] for r in s["bench"]["results"]] == ["fp32", "bf16+cl"]
    assert all(r["steps_per_s"] > 0 for r in s["bench"]["results"])
    assert s["train"]["steps"] == 4 and s["train"]["sessions"] == 2
    assert s["train"]["precision"] == "fp32" and s["train"]["amp"] == "off"
    assert s["train"]["steady_steps_per_s"] > 0 and math.isfinite(s["train"]["final_loss"])
    assert s["separation"]["clips"] == 2
    sc = s["scores"]
    assert sc["clips"] == 2 and sc["failed"] == 0
    for key in ("voice_gnsdr", "voice_gsir", "voice_gsar", "accompaniment_gnsdr"):
        assert math.isfinite(sc[key])
    with open(out / "figures.tsv", newline="") as fh:
        figures = {r["figure"]: r["value"] for r in csv.DictReader(fh, delimiter="\t")}
    assert float(figures["scores.voice_gnsdr"]) == pytest.approx(sc["voice_gnsdr"])
    assert "bench.results.fp32.steps_per_s" in figures
    with open(out / "scores.tsv", newline="") as fh:
        assert len(list(csv.DictReader(fh, delimiter="\t"))) == 2
    assert "GNSDR" in (out / "log.txt").read_text()
    assert (out / "ours.history.csv").exists()


def test_budget_refuses_inputs_that_cannot_travel(tmp_path, monkeypatch):
    mod = _module()
    monkeypatch.setattr(mod, "BUDGET_MIB", 1.0)
    manifest = {
        "clips": [{"split": "test", "bytes": 2**20}],
        "wheels": [],
        "site": [],
    }
    with pytest.raises(UserError, match="fewer --test-clips"):
        mod.budget_report(tmp_path, manifest)


def test_history_rate_skips_the_first_steps(tmp_path):
    mod = _module()
    path = tmp_path / "h.csv"
    path.write_text("step,loss,lr,seconds\n50,1,0.01,10\n100,1,0.01,11\n200,1,0.01,13\n")
    assert mod.history_rate(path, after_step=60) == pytest.approx(50.0)
    assert mod.history_rate(path, after_step=150) is None


def test_a_failed_phase_still_writes_what_was_measured(tmp_path, capsys):
    mod = _module()
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    argv = ["run", "--tiny", "--inputs", str(tmp_path / "empty"), "--out", str(out)]
    assert mod.main(argv) == 2
    assert "gpu_paper_scale.sh --prep" in capsys.readouterr().err
    s = json.loads((out / "gpu_paper_scale.json").read_text())
    assert "Wavfile: not found" in s["error"] and s["machine"]["device"] in ("cpu", "cuda")


def test_training_settings_are_every_variant_field_but_the_step_count():
    """The variant's training settings come from TrainConfig's fields (grad_clip was once
    dropped by a hand-written list); the step count is the time budget's."""
    from hourglass_sep.nets.settings import TrainConfig, variant_keys

    mod = _module()
    args = mod.build_parser().parse_args(["run", "--tiny"])
    arch, train = mod.ours_settings(args)
    assert set(train) == set(variant_keys(TrainConfig)) - {"iterations"}
    assert "grad_clip" in train and (train["batch"], train["frames"]) == (2, 32)
    assert (arch.stacks, arch.channels, arch.stem) == (2, 4, (4, 4, 4))
    TrainConfig(**train, iterations=4)  # what train_in_budget builds


def test_amp_is_a_deprecated_alias_of_precision(capsys, tmp_path):
    mod = _module()
    argv = ["run", "--tiny", "--amp", "off", "--inputs", str(tmp_path), "--out", str(tmp_path)]
    assert mod.main(argv) == 2  # no inputs there; the option was read first
    assert "--amp is deprecated: use --precision fp32" in capsys.readouterr().err
