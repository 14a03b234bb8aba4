"""Separation speed on this machine: the whole CLI, our in-process path, the report's scheme.

    python benchmarks/bench_separation.py            # full run (~3 min on a quiet 2-core CPU)
    python benchmarks/bench_separation.py --quick    # 8-s excerpt, no repeats (~1 min)
    python benchmarks/bench_separation.py --int8     # + the int8 (oneDNN VNNI) experiment

Prints, in one run, for the 64-s song ``annar_4.flac`` (a generated 64-s signal when
absent) and the 4-stack "Ours" network (``ArchConfig()``, 34.7 M parameters; random
weights unless ``--model``):

(cli)  wall seconds of the whole ``hourglass-sep separate SONG -o DIR`` process (start-up,
       imports, model load, reading, full-band output, writing), the way a user runs it;
(a)    **ours** in process: whole clip, BatchNorm folded, in-place skip additions,
       channels_last, bf16 weights (where the CPU has bf16; else fp32), glibc keeping
       freed memory — first call ("cold") and best of the repeats ("warm");
(b)    the report's scheme: the same network un-folded, NCHW, fp32, 64-frame windows
       (hop 32), 4 windows per forward pass; and the ratios (b)/(a) and (b)/(cli).

Then the quality of the fast path on a small network fitted to the song (bf16 change,
windowed vs whole SDR), ``--int8``: the network quantised to int8 (FX graph mode, x86
backend, per-channel weights, activations calibrated on the song) — its speed against
bf16 and the SDR of its estimate against fp32; ``--train``: one training step timings.
Timings on a shared machine are noisy: a bf16/fp32 matmul calibration is printed before
and after, so a run slowed by other processes shows itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hourglass_sep.nets.hardware import cpu_bf16_usable, cpu_has_native_bf16
from hourglass_sep.nets.inference import (
    ModelBundle,
    fold_batchnorm,
    prepare_model,
    read_model_file,
    reuse_freed_memory,
)
from hourglass_sep.separation.windowing import padded_frames

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hourglass_sep.data.audio import read_audio  # noqa: E402
from hourglass_sep.data.features import N_BINS, SR, n_frames  # noqa: E402
from hourglass_sep.nets.model import build_model, loss_terms  # noqa: E402
from hourglass_sep.nets.settings import ArchConfig  # noqa: E402
from hourglass_sep.plan.model_info import model_info  # noqa: E402
from hourglass_sep.separation import separate as S  # noqa: E402

# the reference data beside the checkout, or where HOURGLASS_SEP_SHARED points
SHARED = Path(os.environ.get("HOURGLASS_SEP_SHARED") or REPO.parent / "shared") / "data"
SONG = SHARED / "seed" / "annar_4.flac"
# small enough to fit in ~20 s on one core, with the full network's 5 poolings (time multiple 32)
QUALITY_ARCH = ArchConfig(stacks=2, channels=8, growth=8, stem=(8, 8), poolings=5)


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - est) ** 2), 1e-30)))


def matmul_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> dict:
    """Calibration: dense matmul throughput now (shows whether other processes compete)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def calibration(res: dict, key: str, n: int = 2048) -> None:
    res[key] = {
        "fp32": matmul_gflops(torch.float32, n),
        "bf16": matmul_gflops(torch.bfloat16, n),
    }
    print(f"matmul {key}: fp32 {res[key]['fp32']:.0f}, bf16 {res[key]['bf16']:.0f} GFLOP/s")


def synthetic_song(seconds: float = 64.0, sr: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 220 * 2 ** (np.floor(t / 0.5) % 8 / 12)
    voice = 0.2 * sum(np.sin(2 * np.pi * k * np.cumsum(f0) / sr) / k for k in range(1, 8))
    acc = 0.05 * rng.standard_normal(t.size) + sum(
        0.1 * np.sin(2 * np.pi * f * t) for f in (110, 138.6, 164.8)
    )
    return np.stack([acc, voice]).astype(np.float32)


def timed(fn, repeats: int):
    """(first-call seconds, best of ``repeats`` more calls (the first when 0), last result)."""
    t = time.perf_counter()
    out = fn()
    cold = time.perf_counter() - t
    best = float("inf") if repeats else cold
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return cold, best, out


def cli_seconds(model: str, song: Path, threads: int, extra: list[str]) -> dict:
    """Wall and CPU seconds of one whole ``hourglass-sep separate`` process."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "hourglass_sep.cli", "separate", str(song), "-o", out]
        cmd += ["--model", model, "--threads", str(threads), "--no-progress", *extra]
        before = os.times()
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - t
        after = os.times()
    if proc.returncode:
        raise SystemExit(f"the CLI failed:\n{proc.stderr}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return {"wall_s": wall, "cpu_s": cpu}


def briefly_trained(audio: np.ndarray, sr: int, arch: ArchConfig, steps: int) -> torch.nn.Module:
    """``arch`` fitted ``steps`` steps (batch 4, 512 x 64, Adam 3e-3, one thread) to the song.

    Random weights give nearly constant masks, so schedule and precision comparisons on
    them say little; a network fitted to the song has masks that follow the music.  Fitting
    the test song itself is fine here: the figures compare inference paths.
    """
    from hourglass_sep.data.features import clip_features

    f = clip_features(audio, sr)  # MIR-1K layout: left = accompaniment, right = voice
    mix, voice, acc = (torch.from_numpy(a) for a in (f.mixture, f.voice, f.accompaniment))
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = build_model(arch).train()
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            starts = rng.integers(0, mix.shape[1] - 64, 4)
            batch = [
                torch.stack([a[:, s : s + 64] for s in starts])[:, None] for a in (mix, voice, acc)
            ]
            loss = sum(loss_terms(p, *batch, arch.target) for p in net(batch[0]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


def quality(net, arch, audio, sr) -> dict:
    """bf16 change and windowed-vs-whole SDR of ``net`` (and SDR vs the true stems)."""
    fp32 = prepare_model(net, arch, "cpu", "fp32")
    v, a = S.separate_waveform(fp32, audio, sr, "whole")
    vw, aw = S.separate_waveform(fp32, audio, sr, "windowed")
    out = {"sdr_windowed_vs_whole": {"voice": sdr(v, vw), "accompaniment": sdr(a, aw)}}
    if cpu_bf16_usable():
        vb, ab = S.separate_waveform(prepare_model(net, arch, "cpu", "bf16"), audio, sr)
        e, eb = np.concatenate([v, a]), np.concatenate([vb, ab])
        out["bf16_rel_change"] = float(np.linalg.norm(eb - e) / np.linalg.norm(e))
    if audio.shape[0] == 2:
        out["sdr_vs_true_stems"] = {
            "whole": {"voice": sdr(audio[1], v), "accompaniment": sdr(audio[0], a)},
            "windowed": {"voice": sdr(audio[1], vw), "accompaniment": sdr(audio[0], aw)},
        }
    return out


def int8_model(net: torch.nn.Module, calib: torch.Tensor) -> torch.nn.Module:
    """``net`` (BN folded) in int8: FX graph mode, x86 backend, calibrated on ``calib``."""
    import copy
    import warnings

    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    warnings.filterwarnings("ignore", module="torch.ao")
    torch.backends.quantized.engine = "x86"
    folded = copy.deepcopy(net).eval()
    fold_batchnorm(folded)
    prepared = prepare_fx(folded, get_default_qconfig_mapping("x86"), example_inputs=(calib,))
    with torch.inference_mode():
        prepared(calib)
    return convert_fx(prepared)


def int8_figures(net, arch, audio, sr) -> dict:
    """int8 vs bf16: seconds of a whole separation, and the int8 estimate's SDR vs fp32."""
    from hourglass_sep.data import features

    mag = features.stft(features.mixture_8k(audio, sr)).abs()
    T = padded_frames(mag.shape[-1], arch.time_multiple)
    calib = torch.nn.functional.pad(mag / mag.max(), (0, T - mag.shape[-1]))[None, None]
    t = time.perf_counter()
    q = int8_model(net, calib.contiguous(memory_format=torch.channels_last))
    quantise_s = time.perf_counter() - t
    bundles = {
        "int8": ModelBundle(q, arch, torch.device("cpu"), torch.float32, "int8"),
        "bf16": prepare_model(net, arch, "cpu", "bf16" if cpu_bf16_usable() else "fp32"),
        "fp32": prepare_model(net, arch, "cpu", "fp32"),
    }
    out: dict = {"quantise_s": quantise_s}
    est = {}
    for name, bundle in bundles.items():
        _, out[f"{name}_s"], est[name] = timed(
            lambda b=bundle: S.separate_waveform(b, audio, sr), 1
        )
    ref = np.concatenate(est["fp32"])
    for name in ("int8", "bf16"):
        out[f"sdr_{name}_vs_fp32"] = sdr(ref, np.concatenate(est[name]))
    return out


def train_step_seconds(arch: ArchConfig, bf16: bool, channels_last: bool, steps: int) -> float:
    """Best seconds of one training step (batch 4, 512 x 64) after one warm-up step."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = build_model(arch).train().to(memory_format=fmt)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x, v, a = (torch.rand(4, 1, N_BINS, 64).contiguous(memory_format=fmt) for _ in range(3))
    best = float("inf")
    for i in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = sum(loss_terms(p.float(), x, v, a, arch.target) for p in net(x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            best = min(best, time.perf_counter() - t)
    return best


def prepare_network(args) -> tuple[torch.nn.Module, ArchConfig, str]:
    """(network, architecture, model file for the CLI): ``--model`` or random "Ours" weights."""
    from hourglass_sep.nets.inference import MODEL_FORMAT, build_loaded

    if args.model:
        arch, state, _ = read_model_file(args.model)
        return build_loaded(arch, state, args.model).eval(), arch, args.model
    arch = ArchConfig()
    torch.manual_seed(0)
    net = build_model(arch).eval()
    path = Path(tempfile.mkdtemp()) / "ours_random.pt"
    torch.save(
        {"format": MODEL_FORMAT, "arch": arch.to_dict(), "state_dict": net.state_dict()}, path
    )
    return net, arch, str(path)


def load_song(args) -> tuple[np.ndarray, int, str, Path]:
    """(audio, rate, description, file for the CLI) of ``--song`` or a generated 64-s signal."""
    import soundfile as sf

    song = Path(args.song)
    if song.exists():
        audio, sr = read_audio(song)
        name = str(song)
    else:
        print(f"{song} not found; using a generated 64-s signal")
        audio, sr, name = synthetic_song(), 16000, "synthetic 64 s"
        song = Path(tempfile.mkdtemp()) / "synthetic.flac"
        sf.write(str(song), audio.T, sr)
    if args.quick:
        audio = audio[:, : 8 * sr]
        song = Path(tempfile.mkdtemp()) / "excerpt.flac"
        sf.write(str(song), audio.T, sr)
    return audio, sr, name, song


def speed(args, res: dict, net, arch, model_file: str, audio, sr, song: Path) -> None:
    """(cli), (a) and (b) of the module's notes, into ``res``, printed as they come."""
    repeats = args.repeats if args.repeats is not None else (0 if args.quick else 2)
    res["cli"] = cli_seconds(model_file, song, res["threads"], [])
    print(
        f"(cli) hourglass-sep separate {song.name} (whole process, full band): "
        f"{res['cli']['wall_s']:.2f} s wall, {res['cli']['cpu_s']:.2f} s CPU"
    )
    prec = "bf16" if cpu_bf16_usable() else "fp32"
    ours = prepare_model(net, arch, "cpu", prec)
    S.separate_waveform(ours, audio[:, :sr], sr)  # warm the audio stack on 1 s
    cold, warm, _ = timed(lambda: S.separate_waveform(ours, audio, sr), repeats)
    res["ours"] = {"precision": prec, "cold_s": cold, "warm_s": warm}
    print(f"(a)   ours in process, whole clip, {prec}: {warm:.2f} s warm ({cold:.2f} s first call)")
    if args.no_seed:
        return
    seed = prepare_model(net, arch, "cpu", "fp32", fold=False, channels_last=False, inplace=False)
    t = time.perf_counter()
    S.separate_waveform(seed, audio, sr, "windowed", windows_per_batch=4)
    res["seed_s"] = time.perf_counter() - t
    res["ratio_in_process"] = res["seed_s"] / warm
    res["ratio_cli"] = res["seed_s"] / res["cli"]["wall_s"]
    print(
        f"(b)   report's scheme: windowed 64/32, 4 per pass, fp32, BN kept: {res['seed_s']:.2f} s"
    )
    print(
        f"      ratio (b) / (a): {res['ratio_in_process']:.1f}x; "
        f"(b) / whole CLI process: {res['ratio_cli']:.1f}x"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="an 8-s excerpt, no repeats")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    ap.add_argument("--song", default=str(SONG), help="audio file (default: the 64-s annar_4)")
    ap.add_argument("--model", help="a trained model.pt instead of random 'Ours' weights")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats after the first")
    ap.add_argument("--no-seed", action="store_true", help="skip the report's scheme (~1 min)")
    ap.add_argument("--fit-steps", type=int, default=60, help="quality network steps (0: skip)")
    ap.add_argument("--int8", action="store_true", help="also the int8 experiment")
    ap.add_argument("--train", action="store_true", help="also training-step timings")
    ap.add_argument(
        "--calib-size",
        type=int,
        default=2048,
        help="matrix size of the matmul calibration (smaller: quicker, noisier)",
    )
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.calib_size < 1:
        raise SystemExit(f"--calib-size {args.calib_size}: must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": torch.get_num_threads()}
    res.update(torch=torch.__version__, malloc_tuned=reuse_freed_memory())
    res["cpu_bf16_native"] = cpu_has_native_bf16()
    print(f"torch {torch.__version__}, {res['threads']} thread(s), bf16: {res['cpu_bf16_native']}")
    calibration(res, "before", args.calib_size)
    audio, sr, res["song"], song = load_song(args)
    net, arch, model_file = prepare_network(args)
    frames = n_frames(int(round(audio.shape[1] * SR / sr)))
    info = model_info(arch)
    res.update(audio_seconds=audio.shape[1] / sr, frames=frames, parameters=info["parameters"])
    print(
        f"{res['song']}: {res['audio_seconds']:.1f} s, {frames} frames at 8 kHz; "
        f"network {info['parameters']:,} parameters"
    )
    speed(args, res, net, arch, model_file, audio, sr, song)
    small = None  # the fitted quality network (a two-channel song and --fit-steps only)
    if args.fit_steps and audio.shape[0] == 2:
        small = briefly_trained(audio, sr, QUALITY_ARCH, args.fit_steps)
        q = res["quality_fitted"] = quality(small, QUALITY_ARCH, audio, sr)
        w = q["sdr_windowed_vs_whole"]
        print(
            f"quality (2-stack F=8 network fitted {args.fit_steps} steps to the song): "
            f"windowed vs whole SDR {w['voice']:.1f} / {w['accompaniment']:.1f} dB, "
            f"bf16 relative change {q.get('bf16_rel_change', float('nan')):.1e}"
        )
    if args.int8:
        runs = [("fitted small network", small, QUALITY_ARCH)]
        runs.append(("--model" if args.model else "random Ours", net, arch))
        res["int8"] = {}
        for name, n, a in runs:
            if n is None:
                continue
            r = res["int8"][name] = int8_figures(n, a, audio, sr)
            print(
                f"int8 ({name}): {r['int8_s']:.2f} s vs bf16 {r['bf16_s']:.2f} s vs fp32 "
                f"{r['fp32_s']:.2f} s (quantising {r['quantise_s']:.0f} s); SDR vs fp32: int8 "
                f"{r['sdr_int8_vs_fp32']:.1f} dB, bf16 {r['sdr_bf16_vs_fp32']:.1f} dB"
            )
    if args.train:
        res["train_step_s"] = {}
        for name, bf16, cl in [("fp32", False, False), ("bf16 + channels_last", True, True)]:
            res["train_step_s"][name] = train_step_seconds(arch, bf16, cl, 1 if args.quick else 2)
            print(f"training step (batch 4, 512x64), {name}: {res['train_step_s'][name]:.2f} s")
    calibration(res, "after", args.calib_size)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
