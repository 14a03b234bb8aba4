"""The benchmark scripts (benchmarks/bench_*.py) end to end, each in its smallest setting.

Every script runs the way docs/benchmarks.md shows it, as a subprocess, on generated inputs:
a synthetic corpus (``hourglass-sep synth``), a 4-s generated song and a randomly initialised
tiny network.  HOURGLASS_SEP_SHARED points at an empty folder, so the runs read none of the
real data and behave the same on any machine.  The tests check the exit status and that the
figures were printed (and written with ``--json``), never how fast anything was.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, write_clip

from hourglass_sep import cli

BENCH = REPO / "benchmarks"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def corpus(work) -> Path:
    """4 singers x 1 song x 2 clips of 2-3 s: 4 training clips (abjones, amy), 4 test clips."""
    dest = work / "corpus"
    argv = ["synth", "--dest", str(dest), "--singers", "4", "--songs", "1", "--clips", "2"]
    assert cli.main([*argv, "--min-seconds", "2", "--max-seconds", "3", "--no-progress"]) == 0
    return dest


@pytest.fixture(scope="module")
def song(work) -> Path:
    """A 4-s MIR-1K-layout song (left accompaniment, right voice): room for 64-frame patches."""
    return write_clip(work / "song.wav", seconds=4.0)


@pytest.fixture(scope="module")
def tiny_model(work) -> Path:
    """A model file (the format ``hourglass-sep train`` writes) of a 1-stack F=4 network."""
    import torch

    from hourglass_sep.nets.inference import MODEL_FORMAT
    from hourglass_sep.nets.model import build_model
    from hourglass_sep.nets.settings import ArchConfig

    arch = ArchConfig(stacks=1, channels=4, growth=4, stem=(4,))
    torch.manual_seed(0)
    net = build_model(arch)
    path = work / "tiny.pt"
    torch.save(
        {"format": MODEL_FORMAT, "arch": arch.to_dict(), "state_dict": net.state_dict()}, path
    )
    return path


def run_bench(script: str, *args, cwd: Path, timeout: int = 120, check: bool = True):
    """Run ``benchmarks/<script> args`` as a user does: its stdout (exit status 0 asserted),
    or with ``check=False`` the finished process."""
    tmp = cwd / "tmp"  # the scripts' temporary files land in pytest's folder
    tmp.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "HOURGLASS_SEP_SHARED": str(cwd / "no-shared-data"),
        "TMPDIR": str(tmp),
        "OMP_NUM_THREADS": "1",  # a second thread mostly waits on a busy 2-core machine
    }
    cmd = [sys.executable, str(BENCH / script), *map(str, args)]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if not check:
        return done
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def figures(text: str, pattern: str) -> list[float]:
    """The numbers (nan and inf included) of the first line matching ``pattern``, which must
    match; digits inside words (fp32, 512x64) are not numbers."""
    m = re.search(pattern, text, re.M)
    assert m, f"no line matching {pattern!r} in:\n{text}"
    line = text[m.start() :].split("\n", 1)[0]
    number = r"(?<![\w.])-?(?:\d+(?:\.\d+)?(?:e[-+]\d+)?|(?:nan|inf)(?!\w))"
    return [float(x) for x in re.findall(number, line)]


def finite(*xs: float) -> bool:
    return all(math.isfinite(x) for x in xs)


def test_bench_scoring(corpus, work):
    out = work / "scoring.json"
    text = run_bench(
        "bench_scoring.py",
        *("--data", corpus, "--clips", 4, "--seed-clips", 2, "--workers", 1, "--json", out),
        cwd=work,
    )
    assert text.startswith("4 test clips")
    assert figures(text, r"^  reference cache build:")[0] >= 0
    for backend in ("cached", "fast_bss_eval", "museval"):
        assert len(figures(text, rf"^  {backend} +baseline .* score ")) == 4
    assert "(scaled from 2 clips)" in text
    assert len(re.findall(r"^max \|museval - \w+\| over 4 clips .* OK", text, re.M)) == 2
    assert re.search(r"^  read cached factors +wall .* ms/clip", text, re.M)
    assert "extrapolated to the 825 MIR-1K test clips (x 825/4" in text
    res = json.loads(out.read_text())
    assert res["clips"] == 4 and res["extrapolated_825_s"]["scale"] == 825 / 4
    assert res["max_abs_diff_db"]["cached"] <= 1e-3
    assert finite(*(v for b in res["backends"].values() for v in b.values()))


def test_bench_scoring_without_clips_says_so(work):
    text = run_bench("bench_scoring.py", "--data", work / "nothing-here", cwd=work)
    assert text.startswith("SKIP:") and "nothing-here/Wavfile not found" in text


def test_bench_separation(song, tiny_model, work):
    out = work / "separation.json"
    text = run_bench(
        "bench_separation.py",
        *("--quick", "--song", song, "--model", tiny_model, "--threads", 1, "--repeats", 0),
        *("--fit-steps", 2, "--calib-size", 128, "--int8", "--train", "--json", out),
        cwd=work,
        timeout=180,
    )
    for when in ("before", "after"):
        assert re.search(rf"^matmul {when}: fp32 \d+, bf16 \d+ GFLOP/s$", text, re.M)
    assert re.search(rf"^{re.escape(str(song))}: 4\.0 s, 126 frames at 8 kHz", text, re.M)
    assert figures(text, r"^\(cli\) hourglass-sep separate excerpt\.flac")[-2] > 0
    assert figures(text, r"^\(a\)   ours in process, whole clip")
    assert figures(text, r"^\(b\)   report's scheme")
    assert figures(text, r"^      ratio \(b\) / \(a\)")
    w = re.search(
        r"^quality \(2-stack F=8 network fitted 2 steps .* SDR (\S+) / (\S+) dB", text, re.M
    )
    assert w and finite(*map(float, w.groups()))
    assert figures(text, r"^int8 \(fitted small network\): ")
    assert figures(text, r"^int8 \(--model\): ")
    assert figures(text, r"^training step \(batch 4, 512x64\), fp32: ")
    assert figures(text, r"^training step \(batch 4, 512x64\), bf16 \+ channels_last: ")
    res = json.loads(out.read_text())
    assert res["audio_seconds"] == 4.0 and res["threads"] == 1
    assert res["cli"]["wall_s"] > 0 and res["ours"]["warm_s"] > 0 and res["seed_s"] > 0
    assert set(res["int8"]) == {"fitted small network", "--model"}


def test_bench_long_input(song, tiny_model, work):
    out = work / "long.json"
    text = run_bench(
        "bench_long_input.py",
        *("--minutes", 0.05, "--rate", 16000, "--model", tiny_model, "--threads", 1),
        *("--song", song, "--sdr", 64, "--json", out, "--no-full-band"),
        cwd=work,
    )
    assert "extra flags ['--threads', '1', '--no-progress', '--no-full-band']" in text
    rss, seconds = figures(text, r"^ +0\.05 min: peak RSS")[1:3]
    assert rss > 0 and seconds > 0
    voice, acc = figures(text, r"^segments of 64 frames vs one pass on the 4-s song")[-2:]
    assert finite(voice, acc)
    res = json.loads(out.read_text())
    assert [r["minutes"] for r in res["runs"]] == [0.05] and res["runs"][0]["rc"] == 0
    assert set(res["chunk_sdr"]["64"]) == {"voice", "accompaniment"}


def test_bench_fullband(corpus, song, work):
    """The documented run: the shipped model on the corpus's test clips and the song."""
    out = work / "fullband.json"
    text = run_bench(
        "bench_fullband.py",
        *("--model", REPO / "hourglass_sep" / "resources" / "release.pt"),
        *("--data", corpus, "--song", song, "--clips", 2, "--threads", 1, "--json", out),
        cwd=work,
    )
    assert "MIR-1K test clips at 16 kHz (2):" in text
    assert "song resampled to 44.1 kHz (no content above 8 kHz):" in text
    for mode in ("8 kHz", "full band"):
        for clips in (2, 1):
            line = rf"^  {mode} *: SDR voice .*\({clips} clip\(s\)\)$"
            assert finite(*figures(text, line)), line
    res = json.loads(out.read_text())
    assert set(res) >= {"mir1k_16k", "song_44k"}
    assert res["mir1k_16k"]["full band"]["clips"] == 2


def test_bench_fullband_fits_a_model_without_one(corpus, work):
    """No --model: a release-size network is fitted on the corpus's training clips and saved.

    One step is far too few to separate: the run either prints its figures or stops with
    the explanation of a source the model predicts nothing for, never with a traceback.
    """
    model = work / "quick.pt"
    done = run_bench(
        "bench_fullband.py",
        *("--data", corpus, "--clips", 1, "--fit-steps", 1, "--save-model", model),
        *("--threads", 1),
        cwd=work,
        check=False,
    )
    assert "training a release-size network for 1 steps" in done.stdout
    assert "fit step 0/1" in done.stdout and model.is_file()
    if done.returncode:
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        assert "raise --fit-steps or pass --model" in done.stderr
    else:
        assert "MIR-1K test clips at 16 kHz (1):" in done.stdout


def test_bench_train_step(work):
    out = work / "train_step.json"
    text = run_bench(
        "bench_train_step.py",
        *("--stacks", 1, "--channels", 4, "--growth", 4, "--stem", "4,4"),
        *("--steps", 1, "--warmup", 1, "--batch", 1, "--frames", 32, "--json", out),
        cwd=work,
    )
    assert "batch 1 x 512x32  device=cpu  threads=1" in text
    for setting in ("fp32", "fp32+cl", "bf16+cl"):
        assert figures(text, rf"^ +{re.escape(setting)}: [\d.]+ s/step median")
    res = json.loads(out.read_text())
    assert [r["setting"] for r in res["results"]] == ["fp32", "fp32+cl", "bf16+cl"]
    assert res["arch"]["stem"] == [4, 4] and all(r["timed_steps"] == 1 for r in res["results"])


def test_bench_train_step_of_a_config_variant(work):
    """The ``--variant NAME --config ...`` form: Park's widths at the tiny preset's scale."""
    text = run_bench(
        "bench_train_step.py",
        *("--variant", "parks", "--config", REPO / "config.yaml"),
        *("--config", REPO / "configs" / "tiny.yaml", "--settings", "fp32"),
        *("--steps", 1, "--warmup", 0, "--batch", 1, "--frames", 32),
        cwd=work,
    )
    assert re.search(r"stacks=4, channels=16, growth=0, stem=\(4, 4, 4\)", text)
    assert figures(text, r"^ +fp32: [\d.]+ s/step median")
