"""Paper-scale "Ours" on one GPU in one call: speed of a step, training, separation, scores.

Two commands (``benchmarks/gpu_paper_scale.sh`` wraps both; see docs/benchmarks.md):

``prep`` (the CPU machine, with the project's full environment)
    packs what the GPU call needs into one git-ignored folder (default ``gpu_inputs/``) that
    fits the device machine's 64 MiB together with the repository: the 175 training clips
    resampled to 8 kHz (the rate of the features; lossless FLAC, 16-bit), a stratified
    subset of test clips at their own rate (the originals, FLAC: scoring needs the 16 kHz
    references), wheels of the Python packages the GPU image lacks (soundfile, librosa and
    their needs, for Python 3.12) and copies of the two pure-Python scoring backends.

``run`` (the GPU machine)
    rebuilds the training cache with the project's own feature code, times one training step
    in several settings (``bench_train_step.py`` in a subprocess with a time limit, so a slow
    ``torch.compile`` cannot eat the call), trains "Ours" with
    ``hourglass_sep.training.train.train``
    for as many of its 15,000 steps as fit ``--train-seconds`` (a short first session
    measures the real rate, the second resumes from its checkpoint), separates the test
    clips (``hourglass-sep separate``, workflow mode), scores them (``hourglass_sep.scoring.score``)
    and writes every figure to ``$OUT`` (default ``./gpu_out``).

``--tiny`` runs the same path with a tiny network, a few steps and no ``torch.compile``, on
the CPU too; ``tests/test_gpu_script.py`` runs it on the synthetic corpus.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere: the checkout's package wins
    sys.path.insert(0, str(REPO))

from hourglass_sep.errors import UserError  # noqa: E402  (after the path fix above)
from hourglass_sep.nets.settings import AMP_PRECISIONS, PRECISIONS  # noqa: E402

BUDGET_MIB = 64.0  # what one device call carries: working tree + carried inputs
RESERVE_MIB = 1.0  # left free for files other work adds to the repository
TARGET_STEPS = 15000  # "Ours" evaluated at 15,000 steps (report row 15)
# wheels the GPU image lacks (distribution -> module that proves it is importable)
WHEELS = {
    "soundfile": "soundfile",
    "cffi": "_cffi_backend",
    "pycparser": "pycparser",
    "librosa": "librosa",
    "soxr": "soxr",
    "audioread": "audioread",
    "pooch": "pooch",
    "platformdirs": "platformdirs",
    "decorator": "decorator",
}
SITE_DISTS = ("museval", "fast_bss_eval")  # pure Python: copied, not downloaded
# modules the GPU side imports (through hourglass_sep) besides numpy and torch
GPU_NEEDS = ("pandas", "scipy", "yaml", "tqdm", "soundfile", "librosa", "soxr")


def log(msg: str) -> None:
    print(f"[gpu_paper_scale {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def mib(n: float) -> float:
    return n / 2**20


# =============================================================================== prep
def select_clips(root: Path, test_clips: int, seed: int):
    """(train rows, test rows) of the MIR-1K-format folder ``root`` (project catalogue rules)."""
    from hourglass_sep.data import catalogue as cat

    df = cat.build_catalogue(root)
    train = cat.select(df, "train")
    test = cat.pick_test_subset(df, test_clips, seed)
    if train.empty or test.empty:
        raise UserError(
            f"{root}: needs training clips (singers {', '.join(cat.TRAIN_SINGERS)}) and test "
            f"clips; found {len(train)} and {len(test)}"
        )
    return train, test


def write_train_clip(path: str, dest: Path) -> dict:
    """The clip at 8 kHz as 16-bit FLAC.  Features are scale-invariant (magnitudes are divided
    by the clip's maximum), so a clip whose resampled peak exceeds full scale is scaled down
    instead of clipped."""
    import numpy as np

    from hourglass_sep.data.audio import read_audio, resample, write_audio
    from hourglass_sep.data.features import SR

    audio, sr = read_audio(path)
    y = resample(audio, sr, SR)
    peak = float(np.abs(y).max())
    gain = 1.0 if peak <= 1.0 else 0.999 / peak
    write_audio(dest, y * gain, SR, subtype="PCM_16")
    return {"sr": SR, "source_sr": sr, "gain": gain}


def write_test_clip(path: str, dest: Path) -> dict:
    """The original clip, lossless: a 16-bit FLAC is copied byte for byte, else re-encoded."""
    import soundfile as sf

    info = sf.info(path)
    if Path(path).suffix.lower() == ".flac" and info.subtype == "PCM_16":
        shutil.copyfile(path, dest)
    else:
        data, sr = sf.read(path, dtype="int16", always_2d=True)
        sf.write(str(dest), data, sr, subtype="PCM_16")
    return {"sr": int(info.samplerate), "source_sr": int(info.samplerate), "gain": 1.0}


def pack_clips(train, test, wav_dir: Path) -> list[dict]:
    from tqdm import tqdm

    wav_dir.mkdir(parents=True)
    rows = []
    jobs = [(r, "train") for r in train.itertuples()] + [(r, "test") for r in test.itertuples()]
    for r, split in tqdm(jobs, desc="pack clips", unit="clip", mininterval=2):
        dest = wav_dir / f"{r.clip}.flac"
        info = (write_train_clip if split == "train" else write_test_clip)(r.path, dest)
        data = dest.read_bytes()
        rows.append(
            dict(
                clip=r.clip, split=split, bytes=len(data), md5=hashlib.md5(data).hexdigest(), **info
            )
        )
    return rows


def fetch_wheels(dest: Path, python_version: str) -> list[dict]:
    """Wheels (this environment's versions) of WHEELS for CPython ``python_version`` on x86-64."""
    dest.mkdir(parents=True)
    pins = []
    for dist in WHEELS:
        try:
            pins.append(f"{dist}=={md.version(dist)}")
        except md.PackageNotFoundError:
            raise UserError(
                f"{dist} is not installed here; prep needs the project's environment"
            ) from None
    platforms = [f"manylinux_2_{n}_x86_64" for n in (28, 27, 17)] + ["manylinux2014_x86_64"]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    cmd += ["--python-version", python_version, "--implementation", "cp", "-d", str(dest)]
    cmd += [a for p in platforms for a in ("--platform", p)] + pins
    log(f"pip download {' '.join(pins)} (Python {python_version})")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise UserError(
            f"pip download failed ({done.stderr.strip()[-600:]}); rerun with --no-wheels and "
            "bring the wheels some other way, or pick another --python-version"
        )
    rows = []
    for whl in sorted(dest.glob("*.whl")):
        name = whl.name.split("-")[0].lower().replace("_", "-")
        module = next((m for d, m in WHEELS.items() if d.replace("_", "-") == name), "")
        rows.append({"wheel": whl.name, "module": module, "bytes": whl.stat().st_size})
    with open(dest / "modules.tsv", "w") as fh:
        fh.writelines(f"{r['wheel']}\t{r['module']}\n" for r in rows)
    return rows


def copy_site(dest: Path) -> list[dict]:
    """Copy the installed pure-Python scoring backends (package + dist-info) into ``dest``."""
    rows = []
    for dist_name in SITE_DISTS:
        try:
            dist = md.distribution(dist_name)
        except md.PackageNotFoundError:
            raise UserError(
                f"{dist_name} is not installed here; prep needs the project's environment"
            ) from None
        size = 0
        for f in dist.files or []:
            rel = Path(str(f))
            if rel.parts[0] == ".." or "__pycache__" in rel.parts or rel.suffix == ".pyc":
                continue  # console scripts outside site-packages, bytecode
            src = Path(dist.locate_file(f))
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / rel)
            size += src.stat().st_size
        rows.append({"dist": dist_name, "version": dist.version, "bytes": size})
    return rows


def repo_bytes(folder: Path) -> tuple[int, str | None]:
    """(bytes a device call sends from the checkout besides ``folder``, a note when ``folder``
    would not travel as carried inputs: outside the checkout, or not git-ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        return 0, f"{REPO} is not a git checkout; the repository's size is not counted"
    folder = folder.resolve()
    total = 0
    for f in filter(None, out.stdout.split("\0")):
        p = (REPO / f).resolve()
        if p.is_file() and folder not in p.parents:
            total += p.stat().st_size
    if REPO not in folder.parents:
        return (
            total,
            f"{folder} is outside the checkout {REPO}; a device call carries only paths inside it",
        )
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(folder)], cwd=REPO, stderr=subprocess.DEVNULL
    )
    if ignored.returncode:
        rel = folder.relative_to(REPO)
        return total, (
            f"{rel} is not git-ignored; add `/{rel}/` to .gitignore (or .git/info/exclude) and "
            "name it in the call's `carry`, or it travels as untracked files"
        )
    return total, None


def _fresh_dir(dest: Path) -> None:
    """Empty ``dest`` if it is an earlier prep's output; refuse to touch any other folder."""
    if dest.exists() and any(dest.iterdir()):
        if not (dest / "manifest.json").is_file():
            raise UserError(
                f"{dest}: exists, is not empty and holds no manifest.json of an earlier prep; "
                "choose another --dest"
            )
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)


def budget_report(dest: Path, manifest: dict) -> None:
    """Print the sizes and refuse a folder that cannot travel with the repository."""
    parts = {
        "train clips (8 kHz FLAC)": sum(
            c["bytes"] for c in manifest["clips"] if c["split"] == "train"
        ),
        "test clips (original FLAC)": sum(
            c["bytes"] for c in manifest["clips"] if c["split"] == "test"
        ),
        "wheels": sum(w["bytes"] for w in manifest["wheels"]),
        "scoring backends (site/)": sum(s["bytes"] for s in manifest["site"]),
    }
    repo, note = repo_bytes(dest)
    parts["repository (tracked + untracked, not ignored)"] = repo
    for k, v in parts.items():
        print(f"  {k:<48} {mib(v):7.2f} MiB")
    total = sum(parts.values())
    print(f"  {'total sent by one device call':<48} {mib(total):7.2f} MiB of {BUDGET_MIB:g} MiB")
    if note:
        print(f"  note: {note}")
    if mib(total) > BUDGET_MIB - RESERVE_MIB:
        raise UserError(
            f"{dest}: {mib(total):.1f} MiB with the repository, over the {BUDGET_MIB:g} MiB a "
            f"device call carries (less {RESERVE_MIB:g} MiB reserve); rerun prep with fewer "
            "--test-clips"
        )


def cmd_prep(args) -> int:
    dest = Path(args.dest)
    _fresh_dir(dest)
    train, test = select_clips(Path(args.mir1k), args.test_clips, args.subset_seed)
    log(f"{len(train)} training clips -> 8 kHz FLAC, {len(test)} test clips -> {dest}/Wavfile")
    manifest = {
        "format": "gpu-paper-scale-inputs/1",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": str(Path(args.mir1k).resolve()),
        "test_clips": len(test),
        "subset_seed": args.subset_seed,
        "clips": pack_clips(train, test, dest / "Wavfile"),
        "wheels": [] if args.no_wheels else fetch_wheels(dest / "wheels", args.python_version),
        "site": [] if args.no_wheels else copy_site(dest / "site"),
        "python_version": args.python_version,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{dest}: {len(train)} train + {len(test)} test clips")
    budget_report(dest, manifest)
    return 0


# ================================================================================ run
class Clock:
    """Seconds since the call began (``GPU_PAPER_T0``, set by the shell wrapper, else now) and
    the seconds each phase took."""

    def __init__(self) -> None:
        try:
            self.t0 = float(os.environ["GPU_PAPER_T0"])
        except (KeyError, ValueError):
            self.t0 = time.time()
        self.phases: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.time() - self.t0

    def phase(self, name: str, started: float) -> None:
        self.phases[name] = round(time.time() - started, 2)
        log(f"{name}: {self.phases[name]:.1f} s (call at {self.elapsed():.0f} s)")


def resolve_backend(requested: str) -> str:
    """The scoring backend: ``requested``, or for ``auto`` museval (the paper config's), else
    fast_bss_eval (the same numbers to ~1e-6 dB)."""
    from hourglass_sep.scoring.backends import BACKENDS, get_backend

    errors = []
    for name in BACKENDS if requested == "auto" else (requested,):
        try:
            get_backend(name)
            return name
        except (UserError, ImportError) as exc:
            errors.append(str(exc))
    raise UserError("no scoring backend can be loaded: " + "; ".join(errors))


def check_dependencies(backend: str) -> dict:
    """Versions of what the run imports; a clear error naming every missing module."""
    found, missing = {}, []
    for mod in ("numpy", "torch", *GPU_NEEDS):
        try:
            found[mod] = getattr(importlib.import_module(mod), "__version__", "?")
        except Exception as exc:  # a broken install raises more than ImportError
            missing.append(f"{mod} ({type(exc).__name__}: {exc})")
    if missing:
        raise UserError(
            f"missing Python modules: {'; '.join(missing)}. Run `benchmarks/gpu_paper_scale.sh "
            "--prep` on the CPU machine (it puts wheels for them into gpu_inputs/wheels), carry "
            "gpu_inputs, and start the run through benchmarks/gpu_paper_scale.sh, which installs "
            "them"
        )
    import numpy as np

    from hourglass_sep.data.audio import resample

    try:  # librosa's resampling path (soxr, numba) imports lazily: run it once
        resample(np.zeros(1600, dtype=np.float32), 16000, 8000)
    except Exception as exc:
        raise UserError(f"resampling (librosa + soxr) fails: {type(exc).__name__}: {exc}") from None
    found["scoring backend"] = resolve_backend(backend)
    return found


def gpu_info(device) -> dict:
    import torch

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device)}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(
            name=p.name,
            capability=f"{p.major}.{p.minor}",
            memory_gib=round(p.total_memory / 2**30, 1),
            cudnn=torch.backends.cudnn.version(),
        )
        smi = shutil.which("nvidia-smi")
        if smi:
            q = subprocess.run(
                [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
            )
            info["driver"] = q.stdout.strip().splitlines()[0] if q.stdout.strip() else "?"
    else:
        info["name"] = platform.processor() or platform.machine()
    return info


def run_cli(argv: list[str]) -> None:
    """One ``hourglass-sep`` verb in this process; a non-zero status stops the run."""
    from hourglass_sep import cli

    log("hourglass-sep " + " ".join(argv))
    rc = cli.main(argv)
    if rc:
        raise UserError(f"`hourglass-sep {argv[0]}` failed (status {rc}); see the lines above")


def build_train_cache(inputs: Path, work: Path) -> tuple[Path, Path]:
    """(catalogue, training cache) of the packed clips, made by the project's own verbs."""
    if not (inputs / "Wavfile").is_dir():
        raise UserError(
            f"{inputs}/Wavfile: not found; make it with `benchmarks/gpu_paper_scale.sh --prep` "
            "and carry the folder to this machine"
        )
    catalogue, cache = work / "catalogue.tsv", work / "train.npz"
    run_cli(["catalogue", str(inputs), "-o", str(catalogue)])
    argv = ["cache", "--catalogue", str(catalogue), "--split", "train", "--no-progress"]
    run_cli([*argv, "-o", str(cache)])
    return catalogue, cache


def arch_flags(arch) -> list[str]:
    return [
        "--kind",
        arch.kind,
        "--stacks",
        str(arch.stacks),
        "--channels",
        str(arch.channels),
        "--growth",
        str(arch.growth),
        "--stem",
        ",".join(map(str, arch.stem)),
        "--poolings",
        str(arch.poolings),
    ]


def _bench_module():
    spec = importlib.util.spec_from_file_location(
        "bench_train_step", REPO / "benchmarks" / "bench_train_step.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _bench_subprocess(arch, args, device, batch: int, frames: int, json_path: Path) -> bool:
    """``bench_train_step.py`` in its own process session, so that a ``torch.compile`` that
    outlives ``--bench-timeout`` is killed with its compile workers; True when it timed out."""
    import signal

    import torch

    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_train_step.py"), *arch_flags(arch)]
    cmd += ["--device", str(device), "--settings", args.bench_settings]
    cmd += ["--steps", str(args.bench_steps), "--warmup", str(args.bench_warmup)]
    cmd += ["--seconds", str(args.bench_seconds), "--batch", str(batch), "--frames", str(frames)]
    cmd += ["--threads", str(torch.get_num_threads()), "--json", str(json_path)]
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": path}, start_new_session=True)
    try:
        proc.wait(timeout=args.bench_timeout)
        return False
    except subprocess.TimeoutExpired:
        log(f"step timing stopped after --bench-timeout {args.bench_timeout:g} s")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def bench_steps(arch, args, device, batch: int, frames: int, json_path: Path) -> dict:
    """Steps/s of one training step per ``--bench-settings`` (``bench_train_step.time_steps``):
    in a subprocess with a time limit when a setting compiles, else in this process."""
    settings = [s for s in args.bench_settings.split(",") if s]
    timed_out = False
    if any("compile" in s for s in settings):
        timed_out = _bench_subprocess(arch, args, device, batch, frames, json_path)
        results = json.loads(json_path.read_text())["results"] if json_path.exists() else []
    else:
        bench, results = _bench_module(), []
        for setting in settings:
            steps, warmup = args.bench_steps, args.bench_warmup
            r = bench.time_steps(
                arch, setting, steps, warmup, batch, frames, device, args.bench_seconds
            )
            results.append(r)
            log(f"step {setting}: {r['steps_per_s']:.2f} steps/s ({r['timed_steps']} timed)")
    done = {r["setting"] for r in results}
    for r in results:
        r["seconds_for_15000_steps"] = round(TARGET_STEPS / r["steps_per_s"], 1)
    return {
        "batch": batch,
        "frames": frames,
        "results": results,
        "not_measured": [s for s in settings if s not in done],
        "timed_out": timed_out,
    }


def history_rate(history: Path, after_step: int = 0) -> float | None:
    """Steps per second between the first history row past ``after_step`` and the last row
    (the steady rate: cuDNN autotuning and the first steps excluded)."""
    with open(history, newline="") as fh:
        rows = [(int(r["step"]), float(r["seconds"])) for r in csv.DictReader(fh)]
    rows = [r for r in rows if r[0] > after_step]
    if len(rows) < 2 or rows[-1][1] <= rows[0][1]:
        return None
    return (rows[-1][0] - rows[0][0]) / (rows[-1][1] - rows[0][1])


def ours_settings(args):
    """(ArchConfig, TrainConfig keyword arguments) of the variant ``ours`` of config.yaml at
    paper scale; ``--tiny`` keeps the training settings and shrinks the network.

    The keyword arguments are every variant setting of TrainConfig (its fields, so none is
    left behind) but ``iterations``: the step count is the time budget's.
    """
    from dataclasses import replace

    import yaml

    from hourglass_sep.nets.settings import variant_dict
    from hourglass_sep.plan.experiments import resolve_variant

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    v = resolve_variant(args.variant, config["variants"][args.variant], {})
    arch = v.arch
    train = {k: value for k, value in variant_dict(v.train).items() if k != "iterations"}
    if args.tiny:  # seconds on a loaded CPU: 2 narrow stacks, batches of 2 x 32 frames
        arch = replace(arch, stacks=2, channels=4, growth=4, stem=(4, 4, 4))
        train.update(batch=2, frames=32)
    return arch, train


def train_in_budget(cache: Path, work: Path, arch, base: dict, args, seconds: float) -> dict:
    """Train with ``hourglass_sep.training.train.train`` for as many of ``--steps`` steps as fit
    ``seconds``: a first session of ``--calib-steps`` measures the rate, a second one resumes
    from its checkpoint up to the step count that rate allows."""
    from hourglass_sep.nets.settings import TrainConfig
    from hourglass_sep.training.train import train

    model, workdir = work / f"{args.variant}.pt", work / f"{args.variant}.work"
    history = work / f"{args.variant}.history.csv"
    t0 = time.time()
    calib = max(1, min(args.calib_steps, args.steps))
    cfg = dict(base, device=args.device, precision=args.precision, log_every=args.log_every)
    first = TrainConfig(**cfg, iterations=calib, checkpoint_every=calib)
    info = train(cache, model, arch, first, workdir=workdir, history_path=history, progress=False)
    rate = history_rate(history, after_step=calib // 3) or info["steps_per_second"]
    overhead = max(0.0, info["session_seconds"] - calib / rate)  # start-up, checkpoint, save
    left = seconds - (time.time() - t0) - overhead
    steps = min(args.steps, calib + max(0, int(rate * left)))
    log(
        f"calibration: {rate:.2f} steps/s, {overhead:.1f} s per session outside the loop "
        f"-> {steps} steps"
    )
    if steps > calib:
        # a history row (and a progress line) every 10 x --log-every steps: the log stays short
        cfg["log_every"] = args.log_every * 10
        second = TrainConfig(**cfg, iterations=steps, checkpoint_every=0)
        info = train(
            cache, model, arch, second, workdir=workdir, history_path=history, progress=False
        )
    steady = history_rate(history, after_step=calib) if steps > calib else rate
    steady = steady or info["steps_per_second"]
    return {
        "model": str(model),
        "history": str(history),
        "info": str(model.with_name(model.stem + ".train.json")),
        "steps": int(info["steps"]),
        "target_steps": args.steps,
        "budget_seconds": round(seconds, 1),
        "wall_seconds": round(time.time() - t0, 1),
        "loop_seconds": info["loop_seconds"],
        "steady_steps_per_s": round(steady, 3),
        "seconds_for_15000_steps": round(TARGET_STEPS / steady, 1),
        "final_loss": info["final_loss"],
        "precision": info["precision"],
        "amp": info["amp"],  # the autocast (off = fp32), as summaries before --precision
        "parameters": info["parameters"],
        "sessions": info["sessions"],
    }


def separate_test(model: str, catalogue: Path, work: Path, args) -> dict:
    """``hourglass-sep separate`` in workflow mode over every packed test clip."""
    import numpy as np

    est = work / "estimates.npz"
    argv = ["separate", "--model", model, "--catalogue", str(catalogue), "--estimates", str(est)]
    argv += ["--schedule", args.schedule, "--device", args.device, "--no-progress"]
    run_cli(argv)
    with np.load(est) as z:
        meta = json.loads(str(z["meta"]))
    keep = ("seconds", "clips", "audio_seconds", "device", "precision", "schedule")
    return {"estimates": str(est), **{k: meta.get(k) for k in keep}}


def score_test(
    catalogue: Path, estimates: str, backend: str, steps: int, args
) -> tuple[dict, object]:
    """Per-clip BSS Eval v3 scores (project scoring) and their length-weighted summary."""
    from hourglass_sep.data.catalogue import evaluated_clips, read_catalogue
    from hourglass_sep.results.aggregate import aggregate
    from hourglass_sep.scoring.score import score_estimates

    clips = evaluated_clips(read_catalogue(catalogue))
    workers = args.workers or os.cpu_count() or 1
    t0 = time.time()
    df = score_estimates(clips, estimates, None, backend, workers, args.variant, steps)
    summary = aggregate(df).iloc[0].to_dict()
    summary = {k: (v.item() if hasattr(v, "item") else v) for k, v in summary.items()}
    summary.update(backend=backend, workers=workers, seconds=round(time.time() - t0, 1))
    return summary, df


def flat_figures(summary: dict) -> list[tuple[str, object]]:
    """``(key, value)`` rows of every figure (nested keys joined with '.'), for the TSV."""
    rows: list[tuple[str, object]] = []

    def walk(prefix: str, x) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(x, list) and x and isinstance(x[0], dict) and "setting" in x[0]:
            for r in x:
                walk(f"{prefix}.{r['setting']}", {k: v for k, v in r.items() if k != "setting"})
        else:
            rows.append((prefix, x))

    walk("", summary)
    return rows


def write_outputs(out: Path, summary: dict, scores, train: dict | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_paper_scale.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    with open(out / "figures.tsv", "w") as fh:
        fh.write("figure\tvalue\n")
        fh.writelines(f"{k}\t{v}\n" for k, v in flat_figures(summary))
    if scores is not None:
        scores.to_csv(out / "scores.tsv", sep="\t", index=False)
    for key in ("history", "info") if train else ():
        if Path(train[key]).exists():
            shutil.copyfile(train[key], out / Path(train[key]).name)
    names = sorted(p.name for p in out.iterdir() if p.is_file())
    log(f"figures written to {out}/: {', '.join(names)}")


def print_summary(s: dict) -> None:
    dev = s["machine"]
    scale = "tiny check (not paper scale)" if s["tiny"] else "paper scale"
    print(f"\n== {s['variant']}, {scale}, on {dev.get('name')} ({s['date']}) ==")
    for r in s["bench"]["results"]:
        print(
            f"  step {r['setting']:>16}: {r['steps_per_s']:8.2f} steps/s  (15,000 steps: "
            f"{r['seconds_for_15000_steps'] / 60:.1f} min; first step {r['first_step_s']:.1f} s)"
        )
    for name in s["bench"]["not_measured"]:
        print(f"  step {name:>16}: not measured (timed out or failed)")
    t = s["train"]
    print(
        f"  training: {t['steps']:,} of {t['target_steps']:,} steps in {t['wall_seconds']:.0f} s "
        f"({t['steady_steps_per_s']:.2f} steps/s, {t['precision']}; 15,000 steps would take "
        f"{t['seconds_for_15000_steps'] / 60:.1f} min), final loss {t['final_loss']:.5g}"
    )
    p = s["separation"]
    print(
        f"  separation: {p['clips']} clips ({p['audio_seconds']:.0f} s of audio) "
        f"in {p['seconds']:.1f} s"
    )
    g = s["scores"]
    for src in ("voice", "accompaniment"):
        print(
            f"  {src:<13} GNSDR {g[f'{src}_gnsdr']:6.3f}  GSIR {g[f'{src}_gsir']:6.3f}  "
            f"GSAR {g[f'{src}_gsar']:6.3f} dB  ({g['clips']} clips, {g['failed']} failed, "
            f"{g['backend']})"
        )
    print(f"  phases (s): {s['phases']}\n")


def cmd_run(args) -> int:
    clock = Clock()
    deps = check_dependencies(args.backend)  # before anything imports torch or soundfile
    from hourglass_sep.nets.hardware import resolve_device

    device = resolve_device(args.device)
    inputs, out = Path(args.inputs), Path(args.out)
    # the cache, checkpoints and models (~1 GB at paper scale) stay out of $OUT, which the
    # device call sends back; a fresh folder per run, removed at the end unless --work is given
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu_paper_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _run_phases(args, clock, deps, device, inputs, out, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def _run_phases(args, clock: Clock, deps: dict, device, inputs: Path, out: Path, work: Path) -> int:
    """The phases in order; what is measured is written to ``out`` even when a later phase
    fails (with the error), so a broken separation does not lose the training figures."""
    summary = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "variant": args.variant,
        "tiny": bool(args.tiny),
        "machine": gpu_info(device),
        "versions": deps,
        "inputs": _inputs_summary(inputs),
    }
    arch, base = ours_settings(args)
    summary["arch"], summary["train_settings"] = arch.to_dict(), base
    log(f"{device}: {summary['machine'].get('name')}; {arch}")
    scores = None
    try:
        t = time.time()
        catalogue, cache = build_train_cache(inputs, work)
        clock.phase("cache", t)
        t = time.time()
        bench_json = work / "bench.json"
        summary["bench"] = bench_steps(
            arch, args, device, base["batch"], base["frames"], bench_json
        )
        clock.phase("bench", t)
        seconds = args.deadline_seconds - clock.elapsed() - args.eval_reserve
        t = time.time()
        train = train_in_budget(
            cache, work, arch, base, args, max(min(args.train_seconds, seconds), 0)
        )
        summary["train"] = train
        clock.phase("train", t)
        t = time.time()
        summary["separation"] = separate_test(train["model"], catalogue, work, args)
        clock.phase("separate", t)
        t = time.time()
        estimates, backend = summary["separation"]["estimates"], deps["scoring backend"]
        summary["scores"], scores = score_test(catalogue, estimates, backend, train["steps"], args)
        clock.phase("score", t)
    except BaseException as exc:
        summary["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        summary["phases"] = {**clock.phases, "call_seconds": round(clock.elapsed(), 1)}
        write_outputs(out, summary, scores, summary.get("train"))
    print_summary(summary)
    return 0


def _inputs_summary(inputs: Path) -> dict:
    path = inputs / "manifest.json"
    if not path.exists():
        return {"path": str(inputs), "manifest": "missing"}
    m = json.loads(path.read_text())
    splits = [c["split"] for c in m.get("clips", [])]
    return {
        "path": str(inputs),
        "created": m.get("created"),
        "train_clips": splits.count("train"),
        "test_clips": splits.count("test"),
        "subset_seed": m.get("subset_seed"),
        "mib": round(mib(sum(c["bytes"] for c in m.get("clips", []))), 2),
    }


# ================================================================================ CLI
TINY = dict(
    steps=4,
    calib_steps=2,
    log_every=1,
    train_seconds=60.0,
    bench_settings="fp32,bf16+cl",
    bench_steps=1,
    bench_warmup=0,
    bench_seconds=5.0,
    schedule="whole",
    workers=1,
    device="auto",
)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prep", help="pack the inputs of the GPU call (CPU machine)")
    shared = Path(os.environ.get("HOURGLASS_SEP_SHARED") or REPO.parent / "shared")
    p.add_argument(
        "--mir1k",
        default=str(shared / "data" / "mir1k"),
        help="MIR-1K-format folder (Wavfile/ inside, or the clips)",
    )
    p.add_argument("--dest", default=str(REPO / "gpu_inputs"), help="folder to write (git-ignored)")
    p.add_argument("--test-clips", type=int, default=80, help="stratified test subset size")
    p.add_argument("--subset-seed", type=int, default=0)
    p.add_argument("--python-version", default="3.12", help="Python of the GPU machine (wheels)")
    p.add_argument("--no-wheels", action="store_true", help="no wheels, no scoring backends")
    p.set_defaults(func=cmd_prep)
    r = sub.add_parser("run", help="bench, train, separate, score (GPU machine)")
    r.add_argument("--inputs", default=str(REPO / "gpu_inputs"), help="the folder prep wrote")
    r.add_argument("--out", default=os.environ.get("OUT") or "gpu_out", help="figures go here")
    r.add_argument(
        "--work", help="keep the cache, checkpoints, model here (default: a temporary folder)"
    )
    r.add_argument("--tiny", action="store_true", help="tiny network, few steps: a CPU check")
    r.add_argument("--variant", default="ours", help="variant of config.yaml to train")
    r.add_argument("--device", default="cuda", choices=("auto", "cpu", "cuda"))
    r.add_argument("--precision", default="auto", choices=PRECISIONS, help="training")
    r.add_argument(
        "--amp",
        default=None,
        choices=tuple(AMP_PRECISIONS),
        help="deprecated: use --precision (--amp off is --precision fp32)",
    )
    r.add_argument("--steps", type=int, default=TARGET_STEPS, help="steps to train at most")
    r.add_argument("--train-seconds", type=float, default=300.0, help="training time budget")
    r.add_argument(
        "--deadline-seconds",
        type=float,
        default=560.0,
        help="the whole call must end by then (training is cut to fit)",
    )
    r.add_argument(
        "--eval-reserve",
        type=float,
        default=90.0,
        help="seconds kept after training: separation, scoring, writing",
    )
    r.add_argument("--calib-steps", type=int, default=300, help="first training session")
    r.add_argument("--log-every", type=int, default=50, help="history row every N steps")
    r.add_argument("--bench-settings", default="fp32,bf16+cl,bf16+cl+compile")
    r.add_argument("--bench-steps", type=int, default=200, help="timed steps per setting (most)")
    r.add_argument("--bench-warmup", type=int, default=10)
    r.add_argument("--bench-seconds", type=float, default=6.0, help="timing per setting (most)")
    r.add_argument("--bench-timeout", type=float, default=150.0, help="all settings, compiles too")
    r.add_argument(
        "--schedule",
        default="windowed",
        choices=("windowed", "whole"),
        help="separation schedule (windowed: the paper config's)",
    )
    r.add_argument("--backend", default="auto", choices=("auto", "museval", "fast_bss_eval"))
    r.add_argument("--workers", type=int, default=0, help="scoring processes (0 = all CPUs)")
    r.set_defaults(func=cmd_run)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if getattr(args, "amp", None) is not None:  # the deprecated spelling of --precision
        args.precision = AMP_PRECISIONS[args.amp]
        print(f"warning: --amp is deprecated: use --precision {args.precision}", file=sys.stderr)
    if getattr(args, "tiny", False):  # tiny defaults, unless given on the command line
        given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in argv if a.startswith("--")}
        for k, v in TINY.items():
            if k not in given:
                setattr(args, k, v)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"gpu_paper_scale {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
