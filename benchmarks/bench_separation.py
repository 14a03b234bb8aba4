"""Separation speed on this machine: our whole-clip path vs the seed's windowed scheme.

    python benchmarks/bench_separation.py            # full run (~4 min on a 2-core CPU)
    python benchmarks/bench_separation.py --quick    # 8-s excerpt, one repeat (~1 min)

Times, in one process:

(a) **ours** — the 4-stack "Ours" network (``ArchConfig()``, 34.7 M parameters; random
    weights unless ``--model``) separating the 64-s song ``../shared/data/seed/annar_4.flac``
    (a synthetic 64-s signal when absent) with the whole-clip schedule, BatchNorm folded,
    in-place skip additions, channels_last, bf16 weights (where the CPU has bf16; else
    fp32), glibc keeping freed memory (``separate.reuse_freed_memory``, as the CLI does);
(b) **seed** — the seed's scheme: the same network un-folded, NCHW, fp32, 64-frame windows
    (hop 32), 4 windows per forward pass;

and prints seconds for each (first call = "cold": oneDNN builds kernels for the new
shapes and the allocator faults in fresh pages; best of the repeats = "warm"), the
ratio, the GFLOP of each pass, the SDR between the windowed and the whole-clip
estimates (both fp32) and the relative change bf16 makes to the estimate.  Then one
training step (batch 4, 512 x 64, L1 loss of all stacks, Adam) of the same network
in fp32 and with bf16 autocast + channels_last.  ``--ladder`` also times the steps
between (b) and (a) one at a time (whole-clip fp32, + folding, + channels_last, + bf16).

Timings on a shared machine are noisy: the script prints a bf16/fp32 matmul
calibration figure before and after, so a run slowed by other processes shows itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hourglass_sep import separate as S  # noqa: E402
from hourglass_sep.audio import read_audio  # noqa: E402
from hourglass_sep.features import N_BINS, SR, n_frames  # noqa: E402
from hourglass_sep.model import ArchConfig, build_model, loss_terms  # noqa: E402
from hourglass_sep.model_info import model_info  # noqa: E402

WINDOWED_KEY = "ours' settings, windowed schedule"
SONG = REPO.parent / "shared" / "data" / "seed" / "annar_4.flac"


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - est) ** 2), 1e-30)))


def matmul_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    """Calibration: dense matmul throughput now (shows whether other processes compete)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


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
    """(first-call seconds, best of ``repeats`` further calls (the first call when 0), last result)."""
    t = time.perf_counter()
    out = fn()
    cold = time.perf_counter() - t
    best = float("inf") if repeats else cold
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return cold, best, out


def train_step_seconds(arch: ArchConfig, bf16: bool, channels_last: bool, steps: int) -> float:
    """Best seconds of one training step (batch 4, 512 x 64) after one warm-up step."""
    torch.manual_seed(0)
    net = build_model(arch).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x, v, a = (torch.rand(4, 1, N_BINS, 64).contiguous(memory_format=fmt) for _ in range(3))
    best = float("inf")
    for i in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            preds = net(x)
            loss = sum(loss_terms(p.float(), x, v, a, arch.target) for p in preds)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            best = min(best, time.perf_counter() - t)
    return best


# small enough to fit in ~20 s on one core, with the full network's 5 poolings (time multiple 32)
QUALITY_ARCH = ArchConfig(stacks=2, channels=8, growth=8, stem=(8, 8), poolings=5)


def briefly_trained(
    audio: np.ndarray, sr: int, arch: ArchConfig, steps: int, seed: int = 0
) -> torch.nn.Module:
    """``arch`` trained for ``steps`` steps (batch 4, 512 x 64, Adam 3e-3, one thread) on the song's stems.

    Random weights give nearly constant masks (the default initialisation shrinks the
    signal through 4 stacks), so schedule and precision comparisons on them say little;
    a network fitted to the song has masks that follow the music.  Fitting the test song
    itself is fine here: the figures compare inference paths, not generalisation.
    """
    from hourglass_sep.features import clip_features

    f = clip_features(audio, sr)  # MIR-1K layout: left = accompaniment, right = voice
    mix, voice, acc = (torch.from_numpy(a) for a in (f.mixture, f.voice, f.accompaniment))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_model(arch).train()
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread is faster and deterministic
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


def quality(net, arch, audio, sr, res: dict, key: str) -> None:
    """bf16 change and windowed-vs-whole SDR of ``net`` on ``audio`` (and SDR vs the true stems)."""
    fp32 = S.prepare_model(net, arch, "cpu", "fp32")
    v, a = S.separate_waveform(fp32, audio, sr, "whole")
    vw, aw = S.separate_waveform(fp32, audio, sr, "windowed")
    out = {"sdr_windowed_vs_whole": {"voice": sdr(v, vw), "accompaniment": sdr(a, aw)}}
    if S.cpu_bf16_usable():
        vb, ab = S.separate_waveform(S.prepare_model(net, arch, "cpu", "bf16"), audio, sr, "whole")
        e, eb = np.concatenate([v, a]), np.concatenate([vb, ab])
        out["bf16_rel_change"] = float(np.linalg.norm(eb - e) / np.linalg.norm(e))
    if audio.shape[0] == 2:
        out["sdr_vs_true_stems"] = {
            "whole": {"voice": sdr(audio[1], v), "accompaniment": sdr(audio[0], a)},
            "windowed": {"voice": sdr(audio[1], vw), "accompaniment": sdr(audio[0], aw)},
        }
    res[key] = out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="an 8-s excerpt, no repeats, one training step each"
    )
    ap.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's default)"
    )
    ap.add_argument(
        "--song", default=str(SONG), help="audio file to separate (default: the seed's 64-s song)"
    )
    ap.add_argument("--model", help="a trained model.pt instead of random 'Ours' weights")
    ap.add_argument(
        "--repeats", type=int, default=None, help="timed repeats of our path after the first call"
    )
    ap.add_argument("--no-seed", action="store_true", help="skip the seed scheme (about a minute)")
    ap.add_argument("--no-train", action="store_true", help="skip the training-step timings")
    ap.add_argument(
        "--fit-steps",
        type=int,
        default=None,
        help="training steps of the small network used for the quality figures (default 60; 0 = skip)",
    )
    ap.add_argument(
        "--ladder", action="store_true", help="also time the intermediate settings (~1.5 min more)"
    )
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    tuned = S.reuse_freed_memory()
    repeats = args.repeats if args.repeats is not None else (0 if args.quick else 2)
    res: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "threads": threads,
        "torch": torch.__version__,
        "cpu_bf16_native": S.cpu_has_native_bf16(),
        "quick": bool(args.quick),
        "malloc_tuned": tuned,
    }
    res["matmul_gflops_before"] = {
        "fp32": matmul_gflops(torch.float32),
        "bf16": matmul_gflops(torch.bfloat16),
    }
    print(
        f"torch {torch.__version__}, {threads} thread(s), native CPU bf16: {res['cpu_bf16_native']}; "
        f"matmul now: fp32 {res['matmul_gflops_before']['fp32']:.0f}, bf16 {res['matmul_gflops_before']['bf16']:.0f} GFLOP/s"
    )

    song = Path(args.song)
    if song.exists():
        audio, sr = read_audio(song)
        res["song"] = str(song)
    else:
        print(f"{song} not found; using a synthetic 64-s signal")
        audio, sr = synthetic_song(), 16000
        res["song"] = "synthetic 64 s"
    if args.quick:
        audio = audio[:, : 8 * sr]
    seconds = audio.shape[1] / sr
    frames = n_frames(int(round(audio.shape[1] * SR / sr)))
    res["audio_seconds"], res["frames"] = seconds, frames
    print(
        f"input: {res['song']}, {seconds:.1f} s at {sr} Hz, {audio.shape[0]} channel(s) -> {frames} frames at 8 kHz"
    )

    if args.model:
        arch, state, _ = S.read_model_file(args.model)
        net = build_model(arch)
        net.load_state_dict(state)
    else:
        arch = ArchConfig()
        torch.manual_seed(0)
        net = build_model(arch)
    net.eval()
    info = model_info(arch)
    padded = S.padded_frames(frames, arch.time_multiple)
    n_windows = len(S.window_plan(max(frames, S.WINDOW)))
    res["parameters"] = info["parameters"]
    res["gflop_whole"] = 2 * info["macs_per_frame"] * padded / 1e9
    res["gflop_windowed"] = info["gflop_per_window"] * n_windows
    print(
        f"network: {info['parameters']:,} parameters; whole-clip pass {padded} frames = {res['gflop_whole']:.0f} GFLOP; "
        f"windowed: {n_windows} windows = {res['gflop_windowed']:.0f} GFLOP"
    )

    # (a) our path; the audio stack (librosa's import, soxr) is warmed on 1 s first
    S.separate_waveform(
        S.prepare_model(
            build_model(ArchConfig(stacks=1, channels=4, growth=0, stem=(4,))),
            ArchConfig(stacks=1, channels=4, growth=0, stem=(4,)),
            "cpu",
            "fp32",
        ),
        audio[:, :sr],
        sr,
    )
    prec = "bf16" if S.cpu_bf16_usable() else "fp32"
    ours = S.prepare_model(net, arch, "cpu", prec)
    cold, warm, (v_b, a_b) = timed(lambda: S.separate_waveform(ours, audio, sr, "whole"), repeats)
    res["ours"] = {
        "precision": prec,
        "cold_s": cold,
        "warm_s": warm,
        "gflops": res["gflop_whole"] / warm,
    }
    print(
        f"(a) ours  whole-clip, folded BN, in-place adds, channels_last, {prec}: "
        f"{warm:.2f} s warm ({cold:.2f} s first call), {res['gflop_whole'] / warm:.0f} GFLOP/s"
    )

    fp32 = S.prepare_model(net, arch, "cpu", "fp32")
    t = time.perf_counter()
    v_w32, a_w32 = S.separate_waveform(fp32, audio, sr, "whole")
    res["ours_fp32_s"] = time.perf_counter() - t
    print(f"    same path in fp32: {res['ours_fp32_s']:.2f} s (first call)")
    est32, estb = np.concatenate([v_w32, a_w32]), np.concatenate([v_b, a_b])
    res["bf16_rel_change"] = float(np.linalg.norm(estb - est32) / max(np.linalg.norm(est32), 1e-30))
    print(
        f"    bf16 vs fp32 relative change of the estimate: {res['bf16_rel_change']:.2e} "
        "(random weights: nearly constant masks, see the quality figures below)"
    )

    if args.ladder:
        res["ladder_s"] = {}
        steps = [
            (
                "whole fp32, BN kept, NCHW",
                dict(precision="fp32", fold=False, channels_last=False, inplace=False),
            ),
            ("+ BN folded", dict(precision="fp32", fold=True, channels_last=False, inplace=False)),
            (
                "+ channels_last",
                dict(precision="fp32", fold=True, channels_last=True, inplace=False),
            ),
            (
                "+ in-place adds",
                dict(precision="fp32", fold=True, channels_last=True, inplace=True),
            ),
            ("+ bf16 weights (= ours)", None),
        ]
        for name, kw in steps:
            if kw is None:
                res["ladder_s"][name] = warm
            else:
                b = S.prepare_model(net, arch, "cpu", **kw)
                S.separate_waveform(b, audio[:, :sr], sr)  # warm-up on 1 s
                t = time.perf_counter()
                S.separate_waveform(b, audio, sr, "whole")
                res["ladder_s"][name] = time.perf_counter() - t
            print(f"    ladder: {name:28s} {res['ladder_s'][name]:.2f} s")
        t = time.perf_counter()
        S.separate_waveform(ours, audio, sr, "windowed", windows_per_batch=4)
        res["ladder_s"][WINDOWED_KEY] = time.perf_counter() - t
        print(
            f"    ladder: {'ours, windowed (4 per pass)':28s} {res['ladder_s'][WINDOWED_KEY]:.2f} s"
        )

    # (b) the seed's scheme
    if not args.no_seed:
        seed = S.prepare_model(
            net, arch, "cpu", "fp32", fold=False, channels_last=False, inplace=False
        )
        t = time.perf_counter()
        v_s, a_s = S.separate_waveform(seed, audio, sr, "windowed", windows_per_batch=4)
        res["seed_s"] = time.perf_counter() - t
        res["ratio"] = res["seed_s"] / warm
        res["sdr_windowed_vs_whole"] = {"voice": sdr(v_w32, v_s), "accompaniment": sdr(a_w32, a_s)}
        print(
            f"(b) seed  windowed 64/32, 4 windows per forward, fp32, BN kept, NCHW: {res['seed_s']:.2f} s "
            f"({res['gflop_windowed'] / res['seed_s']:.0f} GFLOP/s)"
        )
        print(f"    ratio seed / ours: {res['ratio']:.1f}x")
        print(
            f"    SDR windowed vs whole (fp32): voice {res['sdr_windowed_vs_whole']['voice']:.1f} dB, "
            f"accompaniment {res['sdr_windowed_vs_whole']['accompaniment']:.1f} dB"
        )

    # quality figures on a network whose masks mean something
    fit_steps = args.fit_steps if args.fit_steps is not None else 60
    if fit_steps and audio.shape[0] == 2 and not args.model:
        t = time.perf_counter()
        small = briefly_trained(audio, sr, QUALITY_ARCH, fit_steps)
        fit_s = time.perf_counter() - t
        quality(small, QUALITY_ARCH, audio, sr, res, "quality_fitted")
        q = res["quality_fitted"]
        res["quality_fitted"]["arch"] = QUALITY_ARCH.to_dict()
        res["quality_fitted"]["steps"] = fit_steps
        print(
            f"quality, small network (2 stacks, F=8,+8, stem 8,8, 5 poolings) fitted {fit_steps} steps "
            f"to the song's stems ({fit_s:.0f} s):"
        )
        print(
            f"    SDR windowed vs whole (fp32): voice {q['sdr_windowed_vs_whole']['voice']:.1f} dB, "
            f"accompaniment {q['sdr_windowed_vs_whole']['accompaniment']:.1f} dB"
        )
        if "bf16_rel_change" in q:
            print(f"    bf16 vs fp32 relative change of the estimate: {q['bf16_rel_change']:.2e}")
        tv = q["sdr_vs_true_stems"]
        print(
            f"    SDR vs the true stems: whole voice {tv['whole']['voice']:.1f} / acc {tv['whole']['accompaniment']:.1f} dB; "
            f"windowed voice {tv['windowed']['voice']:.1f} / acc {tv['windowed']['accompaniment']:.1f} dB"
        )

    # training steps
    if not args.no_train:
        steps = 1 if args.quick else 2
        res["train_step_s"] = {}
        settings = [
            ("fp32", False, False),
            ("fp32 channels_last", False, True),
            ("bf16 autocast", True, False),
            ("bf16 autocast + channels_last", True, True),
        ]
        if args.quick:
            settings = [settings[0], settings[3]]
        for name, bf16, cl in settings:
            if bf16 and not S.cpu_bf16_usable():
                continue
            s = train_step_seconds(arch, bf16, cl, steps)
            res["train_step_s"][name] = s
            print(f"training step (batch 4, 512x64), {name}: {s:.2f} s")

    res["matmul_gflops_after"] = {
        "fp32": matmul_gflops(torch.float32),
        "bf16": matmul_gflops(torch.bfloat16),
    }
    print(
        f"matmul after: fp32 {res['matmul_gflops_after']['fp32']:.0f}, bf16 {res['matmul_gflops_after']['bf16']:.0f} GFLOP/s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
