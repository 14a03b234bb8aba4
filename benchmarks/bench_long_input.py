"""Peak memory and time of `hourglass-sep separate` on long songs (1, 5 and 30 minutes).

    python benchmarks/bench_long_input.py                      # full "Ours", 1/5/30 min
    python benchmarks/bench_long_input.py --minutes 1 5 --arch release
    python benchmarks/bench_long_input.py --model model.pt --rate 44100 --no-full-band

Each song is the 64-s ``../shared/data/seed/annar_4.flac`` tiled to the length (stereo,
resampled to ``--rate``; a generated signal when the file is absent), written as a wav,
and separated by the real command in a fresh Python process, which reports its own peak
resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and wall time.  The
network is the full 4-stack "Ours" (34.7 M parameters, random weights) unless ``--model``
or ``--arch release`` (the shipped size, 3.4 M).  Also prints the chunked estimate's
SDR against the one-pass estimate on the 64-s song (``--sdr``), the quality figure of
the segmenting.  ``--song FILE`` tiles another file instead (the tests: a few seconds).
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# the reference data beside the checkout, or where HOURGLASS_SEP_SHARED points
SHARED = Path(os.environ.get("HOURGLASS_SEP_SHARED") or REPO.parent / "shared") / "data"
SONG = SHARED / "seed" / "annar_4.flac"

DRIVER = """
import json, resource, sys, time
t = time.perf_counter()
from hourglass_sep.cli import main
rc = main(sys.argv[1:])
print("RESULT " + json.dumps({"rc": rc, "seconds": time.perf_counter() - t,
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def base_song(rate: int, song: Path = SONG) -> np.ndarray:
    """(samples, 2) float32: ``song`` (annar_4) at ``rate`` (or 64 s of generated audio)."""
    import soundfile as sf

    from hourglass_sep.data.audio import resample

    if song.exists():
        x, sr = sf.read(str(song), dtype="float32", always_2d=True)
        if x.shape[1] == 1:
            x = np.repeat(x, 2, axis=1)
    else:
        print(f"{song} not found; using a generated 64-s signal")
        sr = 16000
        t = np.arange(64 * sr) / sr
        rng = np.random.default_rng(0)
        voice = 0.2 * np.sin(2 * np.pi * 220 * 2 ** (np.floor(t / 0.5) % 8 / 12) * t)
        x = np.stack([0.05 * rng.standard_normal(t.size), voice], 1).astype(np.float32)
    return np.ascontiguousarray(resample(x.T, sr, rate).T)


def write_long(path: Path, base: np.ndarray, rate: int, minutes: float) -> None:
    """Tile ``base`` to ``minutes`` and write it as 16-bit wav, block by block."""
    import soundfile as sf

    n = int(minutes * 60 * rate)
    with sf.SoundFile(str(path), "w", rate, base.shape[1], "PCM_16") as f:
        done = 0
        while done < n:
            part = base[: n - done]
            f.write(part)
            done += len(part)


def model_file(args, tmp: Path) -> str:
    if args.model:
        return args.model
    import torch

    from hourglass_sep.nets.inference import MODEL_FORMAT
    from hourglass_sep.nets.model import build_model
    from hourglass_sep.nets.settings import ArchConfig

    arch = (
        ArchConfig()
        if args.arch == "ours"
        else ArchConfig(channels=20, growth=20, stem=(20, 40, 40))
    )
    torch.manual_seed(0)
    net = build_model(arch)
    path = tmp / f"{args.arch}.pt"
    torch.save(
        {"format": MODEL_FORMAT, "arch": arch.to_dict(), "state_dict": net.state_dict()}, path
    )
    return str(path)


def run_cli(song: Path, model: str, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-c", DRIVER, "separate", str(song), "--model", model, "-o", str(out)]
    proc = subprocess.run(cmd + extra, capture_output=True, text=True, cwd=REPO)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"separate failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[-1][7:])


def chunk_sdr(model: str, base: np.ndarray, rate: int, chunk: int) -> dict:
    """SDR (dB) of the segmented estimate against the one-pass estimate of the base song."""
    from hourglass_sep.nets.inference import load_model
    from hourglass_sep.separation.separate import separate_waveform

    bundle = load_model(model, device="cpu")
    one = separate_waveform(bundle, base, rate, chunk_frames=None, full_band=True)
    cut = separate_waveform(bundle, base, rate, chunk_frames=chunk, full_band=True)
    return {
        name: float(10 * np.log10(np.sum(r**2) / max(np.sum((r - c) ** 2), 1e-30)))
        for name, r, c in zip(("voice", "accompaniment"), one, cut)
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, nargs="*", default=[1, 5, 30])
    ap.add_argument("--model", help="a model.pt (default: random weights of --arch)")
    ap.add_argument("--arch", choices=("ours", "release"), default="ours")
    ap.add_argument("--rate", type=int, default=44100, help="sample rate of the long songs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--song", default=str(SONG), help="song to tile (default: the 64-s annar_4)")
    ap.add_argument(
        "--sdr",
        type=int,
        nargs="*",
        default=None,
        metavar="CHUNK",
        help="also print the segmented-vs-one-pass SDR for these --chunk-frames",
    )
    ap.add_argument("--json", help="also write the figures here")
    args, extra = ap.parse_known_args(argv)
    extra = ["--threads", str(args.threads), "--no-progress", *extra]
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "rate": args.rate, "runs": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        model = model_file(args, tmp)
        base = base_song(args.rate, Path(args.song))
        res["model"] = args.model or f"random {args.arch}"
        print(f"model {res['model']}, songs at {args.rate} Hz, extra flags {extra}")
        for minutes in args.minutes:
            song = tmp / f"song_{minutes:g}min.wav"
            write_long(song, base, args.rate, minutes)
            r = run_cli(song, model, tmp / "out", extra)
            r["minutes"] = minutes
            res["runs"].append(r)
            print(
                f"{minutes:5g} min: peak RSS {r['peak_rss_mb']:7.0f} MB, "
                f"{r['seconds']:7.1f} s wall "
                f"({r['seconds'] / (60 * minutes):.3f} s per s of audio)",
                flush=True,
            )
            song.unlink()
        for chunk in args.sdr or []:
            s = chunk_sdr(model, base.T, args.rate, chunk)
            res.setdefault("chunk_sdr", {})[chunk] = s
            print(
                f"segments of {chunk} frames vs one pass on the "
                f"{base.shape[0] / args.rate:.0f}-s song: "
                f"voice {s['voice']:.1f} dB, accompaniment {s['accompaniment']:.1f} dB"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
