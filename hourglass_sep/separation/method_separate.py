"""Separation by a training-free method (``methods/kinds/``): workflow shards and song files.

A method gives masks on a magnitude; they multiply the mixture's STFT and are inverted, as a
network's masks are, so the outputs are the same files as a model's:

* **workflow mode** (``--catalogue``): the evaluated test clips of one shard -> the estimates
  ``.npz`` of ``separate.run_shard`` (``clips``, ``voice__<clip>``, ``accompaniment__<clip>``,
  ``meta``), scored like any snapshot's.  ``band: protocol``: the report's 8 kHz STFT
  (``data.features``; Nyquist bin zero, soxr back to the clip's rate), the networks' exact path.
  ``band: full``: the clip's own rate, every bin, on ``fullband.Grid.matching(sr)`` (4 hops a
  window, the networks' frame rate and bin spacing in seconds and hertz).  Oracles read the true
  sources from the clip's channels (left = accompaniment, right = voice).
* **song mode**: any song at its own rate.  ``band: protocol``: masks on the 8 kHz magnitude,
  extended above 4 kHz as a network's are (``fullband.MaskLookup``; ``--no-full-band``: the
  8 kHz path); ``band: full``: masks on the song's own STFT (held whole: about 400 MB at the
  peak for 3 minutes at 44.1 kHz).  The stems are written by ``songio.write_stems``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch

from hourglass_sep.data import features
from hourglass_sep.data.audio import read_audio, resample
from hourglass_sep.errors import UserError
from hourglass_sep.methods.record import MethodKind
from hourglass_sep.separation import fullband as fb
from hourglass_sep.separation.separate import check_workflow_args, shard_clips, write_estimates

PROTOCOL_FRAME_RATE = features.SR / features.HOP  # 31.25 frames per second


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` (..., m) trimmed or zero-padded to ``n`` samples, float32."""
    if x.shape[-1] >= n:
        return np.ascontiguousarray(x[..., :n], dtype=np.float32)
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])]
    return np.pad(x, pad).astype(np.float32)


def stft(x: np.ndarray, grid: fb.Grid) -> np.ndarray:
    """Complex STFT (..., bins, frames) on ``grid``, every bin (centred frames, zero padded:
    the frames of ``fullband.masked_blocks``)."""
    t = torch.as_tensor(np.asarray(x, np.float32))
    rows = t.reshape(-1, t.shape[-1])
    window = torch.hann_window(grid.n_fft, periodic=True)
    spec = torch.stft(
        rows,
        grid.n_fft,
        grid.hop,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.reshape(*t.shape[:-1], *spec.shape[-2:]).numpy()


def istft(spec: np.ndarray, grid: fb.Grid, n: int) -> np.ndarray:
    """Inverse of :func:`stft`, ``n`` samples."""
    s = torch.from_numpy(np.ascontiguousarray(spec))
    rows = s.reshape(-1, *s.shape[-2:])
    window = torch.hann_window(grid.n_fft, periodic=True)
    out = torch.istft(rows, grid.n_fft, grid.hop, window=window, center=True, length=n)
    return out.reshape(*s.shape[:-2], n).numpy()


def _normalised(mags: np.ndarray) -> np.ndarray:
    """Magnitudes divided by the mixture's (row 0) maximum: the scale the networks see."""
    return (mags / max(float(mags[0].max(initial=0.0)), features.EPS)).astype(np.float32)


def separate_clip(
    rec: MethodKind, settings: dict, audio: np.ndarray, sr: int
) -> tuple[np.ndarray, np.ndarray]:
    """(voice, accompaniment) float32 at ``sr``, as long as ``audio`` (channels, n).

    An oracle needs a MIR-1K clip (2, n): left = accompaniment, right = voice."""
    settings = rec.resolved(settings)
    audio = np.asarray(audio, np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    if rec.oracle and audio.shape[0] != 2:
        rec.refuse_without_sources()  # a mono or multichannel file holds no true sources
    if settings["band"] == "full":
        return _full_band_clip(rec, settings, audio, sr)
    feats = features.clip_features(audio, sr, with_sources=rec.oracle)
    sources = np.stack([feats.voice, feats.accompaniment]) if rec.oracle else None
    masks = rec.compute(feats.mixture, settings, frame_rate=PROTOCOL_FRAME_RATE, sources=sources)
    waves = features.istft(torch.from_numpy(masks * feats.mix_stft), length=feats.samples_8k)
    waves = fit_length(resample(waves.numpy(), features.SR, sr), audio.shape[1])
    return waves[0], waves[1]


def _full_band_clip(rec: MethodKind, settings: dict, audio: np.ndarray, sr: int):
    """``band: full``: masks on the clip's own STFT (every bin), applied there."""
    grid = fb.Grid.matching(sr)
    mono = audio.mean(axis=0)
    rows = np.stack([mono, audio[1], audio[0]]) if rec.oracle else mono[None]
    spec = stft(rows, grid)
    mags = _normalised(np.abs(spec))
    sources = mags[1:] if rec.oracle else None
    masks = rec.compute(mags[0], settings, frame_rate=sr / grid.hop, sources=sources)
    waves = istft(masks * spec[0], grid, audio.shape[1])
    return waves[0].astype(np.float32), waves[1].astype(np.float32)


def song_blocks(
    rec: MethodKind, settings: dict, mono: np.ndarray, sr: int, full_band: bool = True
) -> Iterator[np.ndarray]:
    """(2, m) float32 blocks of (voice, accompaniment) at ``sr`` for a mono song ``(n,)``.

    Oracles are refused (a song has no true sources)."""
    rec.refuse_without_sources()
    settings = rec.resolved(settings)
    mix = np.asarray(mono, np.float32)
    if settings["band"] == "full":
        if not full_band:
            raise UserError(
                f"{rec.name}: band=full computes the masks on every bin of the song's own "
                "STFT; drop --no-full-band, or use band=protocol for the 8 kHz output"
            )
        grid = fb.Grid.matching(sr)
        spec = stft(mix, grid)
        masks = rec.compute(_normalised(np.abs(spec)[None])[0], settings, frame_rate=sr / grid.hop)
        del spec
        frames = torch.from_numpy(masks)
        yield from fb.masked_blocks(mix, grid, lambda m0, m1: frames[:, :, m0:m1].transpose(1, 2))
        return
    x8 = resample(mix, sr, features.SR)
    grid8 = fb.Grid.matching(features.SR)
    mag = _normalised(fb.magnitude(x8, grid8)[None])[0]
    masks = rec.compute(mag, settings, frame_rate=PROTOCOL_FRAME_RATE)
    blocks = fb.song_blocks(masks, mag, x8, mix, sr, len(mix), full_band)
    del masks, mag, x8
    yield from blocks


def run_method_shard(args, rec: MethodKind, settings: dict, threads: int) -> int:
    """Workflow mode: the evaluated test clips of one shard -> the estimates ``.npz``
    (``separate.run_shard``'s format; ``meta`` names the method and its settings)."""
    check_workflow_args(args)
    settings = rec.resolved(settings)
    rows = shard_clips(args.catalogue, args.shard)
    t0 = time.perf_counter()
    estimates: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    audio_seconds = 0.0
    for clip, path in _progress(args, rec, rows):
        audio, sr = read_audio(path)
        try:
            v, a = separate_clip(rec, settings, audio, sr)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        estimates[str(clip)] = (v, a)
        audio_seconds += audio.shape[1] / sr
    seconds = time.perf_counter() - t0
    meta = dict(
        seconds=seconds,
        device="cpu",
        method=rec.name,
        oracle=rec.oracle,
        settings=settings,
        clips=len(rows),
        shard=args.shard,
        model=None,
        threads=threads,
        audio_seconds=audio_seconds,
        torch=str(torch.__version__),
    )
    write_estimates(args.estimates, estimates, meta)
    print(
        f"{args.estimates}: {len(rows)} clip(s) of shard {args.shard} in {seconds:.1f} s "
        f"({rec.name}, band={settings['band']})"
    )
    return 0


def _progress(args, rec: MethodKind, rows):
    """(clip, path) of every row, under a tqdm bar over clips unless ``--no-progress``."""
    pairs = [(str(c), str(p)) for c, p in zip(rows["clip"], rows["path"])]
    if args.no_progress or not pairs:
        return pairs
    from tqdm import tqdm

    return tqdm(pairs, unit="clip", desc=f"{rec.name} {args.shard}")
