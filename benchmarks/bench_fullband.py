"""What full-band output does to separation quality: SDR with and without it.

    python benchmarks/bench_fullband.py --model results/release/models/release/model.pt
    python benchmarks/bench_fullband.py --fit-steps 600 --save-model /tmp/quick.pt  # no model

For MIR-1K test clips (16 kHz; ``../shared/data/mir1k/Wavfile`` or ``--data``, singers
other than abjones/amy, the first ``--clips`` by name) and for the 64-s song annar_4 (or
``--song``) resampled to 44.1 kHz, separates the mixture (mean of the channels) twice —
the report's 8 kHz protocol (silent above 4 kHz) and full band
(``hourglass_sep.separation.fullband``) —
and scores both against the clip's own channels (voice = right, accompaniment = left) with
BSS Eval v3 (``scoring.bss_eval_sources``, fast_bss_eval backend).  Prints SDR per source,
the length-weighted mean NSDR (SDR minus the mixture's SDR, as GNSDR) and the SDR of the
band below 4 kHz alone.  Without ``--model`` a release-size network (4 stacks, F=20, +20,
stem 20-40-40) is trained for ``--fit-steps`` steps on the MIR-1K training clips first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# the reference data beside the checkout, or where HOURGLASS_SEP_SHARED points
SHARED = Path(os.environ.get("HOURGLASS_SEP_SHARED") or REPO.parent / "shared") / "data"
MIR1K = SHARED / "mir1k"
SONG = SHARED / "seed" / "annar_4.flac"
TRAIN_SINGERS = ("abjones", "amy")


def quick_model(steps: int, path: Path, wavs: Path, seed: int = 0) -> Path:
    """A release-size network trained ``steps`` steps (batch 4, 64 frames, Adam 2e-3) on the
    training singers' clips in ``wavs``."""
    import torch

    from hourglass_sep.data.audio import read_audio
    from hourglass_sep.data.features import clip_features
    from hourglass_sep.nets.inference import MODEL_FORMAT
    from hourglass_sep.nets.model import build_model, loss_terms
    from hourglass_sep.nets.settings import ArchConfig

    arch = ArchConfig(channels=20, growth=20, stem=(20, 40, 40))
    feats = []
    for f in sorted(wavs.glob("*")):
        if f.name.split("_")[0] in TRAIN_SINGERS:
            a, sr = read_audio(f)
            c = clip_features(a, sr)
            if c.mixture.shape[1] > 64:  # room for one 64-frame patch
                feats.append([torch.from_numpy(x) for x in (c.mixture, c.voice, c.accompaniment)])
    if not feats:
        raise SystemExit(
            f"{wavs}: no training clips ({'/'.join(TRAIN_SINGERS)}_*, over 2 s) to fit a "
            "model on; pass --model or a --data folder that has them"
        )
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_model(arch).train()
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    t = time.perf_counter()
    for step in range(steps):
        picks = rng.integers(0, len(feats), 4)
        batch = [[], [], []]
        for i in picks:
            s = int(rng.integers(0, feats[i][0].shape[1] - 64))
            for k in range(3):
                batch[k].append(feats[i][k][:, s : s + 64])
        x, v, a = (torch.stack(b)[:, None] for b in batch)
        loss = sum(loss_terms(p, x, v, a, arch.target) for p in net(x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            dt = time.perf_counter() - t
            print(f"  fit step {step}/{steps} loss {loss.item():.4f} ({dt:.0f} s)", flush=True)
    net.eval()
    record = {"format": MODEL_FORMAT, "arch": arch.to_dict(), "state_dict": net.state_dict()}
    record.update(step=steps, train={"steps": steps, "lr": 2e-3, "seed": seed, "quick": True})
    torch.save(record, path)
    return path


def score(refs: np.ndarray, ests: np.ndarray, sr: int) -> dict:
    """SDR per source (dB), the mixture's SDR, and SDR of the band below 4 kHz."""
    from hourglass_sep.data.audio import resample
    from hourglass_sep.scoring.backends import bss_eval_sources

    backend = "fast_bss_eval"
    sdr = bss_eval_sources(refs, ests, backend)["sdr"]
    mix = bss_eval_sources(refs, np.stack([refs.mean(0)] * 2), backend)["sdr"]
    low = [resample(np.asarray(x, np.float32), sr, 8000) for x in (refs, ests)]
    low_sdr = bss_eval_sources(low[0], low[1], backend)["sdr"]
    return {"sdr": sdr.tolist(), "mix_sdr": mix.tolist(), "sdr_below_4k": low_sdr.tolist()}


def summarise(rows: list[dict]) -> dict:
    """Length-weighted means over clips: SDR, NSDR (= GNSDR) and SDR below 4 kHz."""
    w = np.array([r["samples"] for r in rows], float)
    names = ("voice", "accompaniment")

    def mean(values) -> dict:
        return {
            s: float(np.average([v[i] for v in values], weights=w)) for i, s in enumerate(names)
        }

    nsdr = [[r["sdr"][i] - r["mix_sdr"][i] for i in range(2)] for r in rows]
    return {
        "clips": len(rows),
        "sdr": mean([r["sdr"] for r in rows]),
        "gnsdr": mean(nsdr),
        "sdr_below_4k": mean([r["sdr_below_4k"] for r in rows]),
    }


def evaluate(bundle, clips: list[tuple[str, np.ndarray, int]]) -> dict:
    from hourglass_sep.scoring.signals import ClipError
    from hourglass_sep.separation.separate import separate_waveform

    out: dict = {}
    for mode, full in (("8 kHz", False), ("full band", True)):
        rows = []
        for name, audio, sr in clips:
            v, a = separate_waveform(bundle, audio, sr, full_band=full)
            refs = np.stack([audio[1], audio[0]]).astype(np.float64)
            try:
                scores = score(refs, np.stack([v, a]), sr)
            except ClipError as exc:  # e.g. a barely fitted model's all-zero mask
                raise SystemExit(
                    f"{name} ({mode}): {exc}; BSS Eval cannot score it. A model fitted only a "
                    "few steps can predict nothing for a source: raise --fit-steps or pass --model"
                ) from None
            rows.append({"clip": name, "samples": audio.shape[1], **scores})
        out[mode] = summarise(rows)
    return out


def show(title: str, res: dict) -> None:
    print(title)
    for mode, r in res.items():
        print(
            f"  {mode:9s}: SDR voice {r['sdr']['voice']:6.2f} / accompaniment "
            f"{r['sdr']['accompaniment']:6.2f} dB; GNSDR {r['gnsdr']['voice']:6.2f} / "
            f"{r['gnsdr']['accompaniment']:6.2f} dB; below 4 kHz SDR "
            f"{r['sdr_below_4k']['voice']:6.2f} / {r['sdr_below_4k']['accompaniment']:6.2f} dB "
            f"({r['clips']} clip(s))"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model.pt or release.pt (default: a quickly trained one)")
    ap.add_argument("--fit-steps", type=int, default=600)
    ap.add_argument("--save-model", help="where to keep the quickly trained model")
    ap.add_argument("--clips", type=int, default=40, help="MIR-1K test clips to score")
    ap.add_argument(
        "--data", default=str(MIR1K), help="MIR-1K-format folder (holding Wavfile/ or the clips)"
    )
    ap.add_argument(
        "--song", default=str(SONG), help="a song to score at 44.1 kHz too (skipped when absent)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    import torch

    from hourglass_sep.data.audio import read_audio, resample
    from hourglass_sep.data.catalogue import find_wav_dir
    from hourglass_sep.errors import UserError
    from hourglass_sep.nets.inference import load_model

    torch.set_num_threads(args.threads)
    try:
        wavs = find_wav_dir(args.data)
    except UserError as exc:
        raise SystemExit(f"--data: {exc}") from None
    model = args.model
    if not model:
        path = Path(args.save_model or "/tmp/hourglass_sep_quick_model.pt")
        print(f"training a release-size network for {args.fit_steps} steps -> {path}")
        model = str(quick_model(args.fit_steps, path, wavs))
    bundle = load_model(model, device="cpu")
    print(bundle.describe())
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "model": model}
    test = sorted(f for f in wavs.glob("*") if f.name.split("_")[0] not in TRAIN_SINGERS)
    clips = [(f.stem, *read_audio(f)) for f in test[: args.clips]]
    if not clips:
        raise SystemExit(f"{wavs}: no test clips (singers other than {'/'.join(TRAIN_SINGERS)})")
    res["mir1k_16k"] = evaluate(bundle, clips)
    show(f"MIR-1K test clips at 16 kHz ({len(clips)}):", res["mir1k_16k"])
    song_path = Path(args.song)
    if song_path.exists():
        audio, sr = read_audio(song_path)
        name = song_path.stem
        song = [(f"{name} @ 44.1 kHz", resample(audio, sr, 44100), 44100)]
        res[f"{name}_44k"] = evaluate(bundle, song)
        above = f"no content above {sr // 2000} kHz"
        show(f"{name} resampled to 44.1 kHz ({above}):", res[f"{name}_44k"])
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
