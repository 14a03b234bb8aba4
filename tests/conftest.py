"""Shared test fixtures: paths to the optional real data, small generated clips, a tiny run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# the project's reference data beside the checkout; HOURGLASS_SEP_SHARED points elsewhere
# (a clone in /tmp)
SHARED = Path(os.environ.get("HOURGLASS_SEP_SHARED") or REPO.parent / "shared")
MIR1K = SHARED / "data" / "mir1k"
SEED_SONG = SHARED / "data" / "seed" / "annar_4.flac"


def copy_repo(dest: Path) -> Path:
    """Copy the checkout's files (tracked + untracked, not ignored) to ``dest``.

    A workflow run in the copy leaves the checkout's own results/ and .snakemake/ alone.
    """
    import shutil

    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for f in files:
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    return dest


def needs_mir1k():
    return pytest.mark.skipif(
        not (MIR1K / "Wavfile").is_dir(),
        reason=f"real MIR-1K clips not found at {MIR1K} "
        "(only present beside the project's checkout)",
    )


def write_clip(
    path: Path, seconds: float = 2.0, sr: int = 16000, seed: int = 0, f0: float = 220.0
) -> Path:
    """A MIR-1K-format stereo clip: left = accompaniment (noise + low chord), right = voice.

    The voice is a harmonic tone with vibrato, so separation and scoring have something real
    to work on.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    vib = 1 + 0.01 * np.sin(2 * np.pi * 5 * t)
    phase = 2 * np.pi * np.cumsum(f0 * vib) / sr
    voice = (
        sum(np.sin(k * phase) / k for k in range(1, 8))
        * 0.2
        * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t) ** 2)
    )
    acc = 0.1 * rng.standard_normal(t.size) + sum(
        0.1 * np.sin(2 * np.pi * f * t) for f in (110, 138.6, 164.8)
    )
    audio = np.stack([acc, voice], axis=1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sr, subtype="PCM_16")
    return path


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """A MIR-1K-format folder with 2 train clips (abjones, amy) and 3 test clips."""
    wav = tmp_path / "corpus" / "Wavfile"
    names = ["abjones_1_01", "amy_2_01", "bobby_1_01", "bobby_1_02", "carl_3_01"]
    for i, name in enumerate(names):
        write_clip(wav / f"{name}.wav", seconds=1.5 + 0.5 * i, seed=i, f0=180 + 20 * i)
    return tmp_path / "corpus"


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a test module, restored after it (a module opts in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``): tiny networks run fastest on
    one thread, a shared 2-core machine makes two spin, and a CLI's --threads must not leak."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def snakemake_env() -> dict:
    """The environment of a workflow run: this venv's bin/ first on PATH (rules find the CLI)."""
    return dict(
        os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1"
    )


def snakemake(
    cwd: Path, *args: str, timeout: int = 900, pythonpath: Path | None = None
) -> subprocess.CompletedProcess:
    """Run this venv's ``snakemake`` in ``cwd`` (:func:`snakemake_env`).
    ``pythonpath``: a folder put first on PYTHONPATH (e.g. holding a sitecustomize.py)."""
    env = snakemake_env()
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    cmd = [str(BIN / "snakemake"), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny preset run end to end in a copy of the repository, once per session.

    The workflow tests and the HTML report test share it, so the preset runs only once.
    """
    work = copy_repo(tmp_path_factory.mktemp("repo"))
    t0 = time.perf_counter()
    r = snakemake(work, "--cores", "2", "--configfile", "configs/tiny.yaml")
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    print(f"tiny preset end to end: {time.perf_counter() - t0:.1f} s")
    keep_pristine(work)
    return work


PRISTINE = ["summary.tsv", "claims", "scores"]  # the products later tests compare against


def keep_pristine(work: Path) -> None:
    """Copy the tiny run's tables to ``work/../pristine`` before later tests change the run
    (new variants, retrained ones), so a test can compare another run with the original."""
    import shutil

    res, dest = work / "results" / "tiny", work.parent / "pristine"
    for name in PRISTINE:
        src = res / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("*.npz"))
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
