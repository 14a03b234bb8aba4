"""Spectrogram cache: one uncompressed ``.npz`` file per split, memory-mapped on read.

Arrays (frames of all clips concatenated along time, time-major so a training
patch is one contiguous block):
    clips        (n,)            clip names
    offsets      (n+1,) int64    first frame of each clip; clip i = rows offsets[i]:offsets[i+1]
    scale        (n,) float32    the clip's max mixture magnitude
    samples      (n,) int64      length of the original audio (samples at ``sr``)
    sr           (n,) int64      original sample rate
    samples_8k   (n,) int64      length of the 8 kHz mixture (for the inverse STFT)
    mix_stft     (F, 512) complex64  unnormalised mixture STFT (phase + magnitude, for separation)
    mix_nyquist  (F,) complex64  the mixture's Nyquist bin (not seen by the network; kept so
                 the inverse STFT of the cache restores the 8 kHz mixture exactly)
    voice, accompaniment (F, 512) float16  normalised source magnitudes (training targets)

The normalised mixture magnitude is ``|mix_stft| / scale``.  float16 keeps the
targets compact (relative precision 5e-4, far below the network's error); the
mixture is kept at full precision so the inverse STFT restores the waveform.
"""

from __future__ import annotations

import argparse
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from hourglass_sep.data import catalogue as cat
from hourglass_sep.data.audio import atomic_path, read_audio
from hourglass_sep.data.features import N_BINS, clip_features
from hourglass_sep.data.npz_map import map_npz
from hourglass_sep.errors import UserError

FORMAT_VERSION = 1


def write_cache(clips: pd.DataFrame, path: str | Path, progress: bool = True) -> dict:
    """Compute the features of every clip in ``clips`` (a catalogue slice) and write one file."""
    if len(clips) == 0:
        raise UserError(f"{path}: no clips to cache (empty split)")
    mix, nyq, voice, acc = [], [], [], []
    names, scale, samples, srs, samples_8k, offsets = [], [], [], [], [], [0]
    t0 = time.perf_counter()
    for row in tqdm(
        clips.itertuples(),
        total=len(clips),
        desc=f"cache {Path(path).name}",
        unit="clip",
        disable=not progress,
    ):
        audio, sr = read_audio(row.path)
        if audio.shape[0] != 2:
            raise UserError(
                f"{row.path}: has {audio.shape[0]} channel(s); MIR-1K clips are stereo "
                "(left = accompaniment, right = voice)"
            )
        f = clip_features(audio, sr)
        mix.append(f.mix_stft.T)
        nyq.append(f.nyquist)
        voice.append(f.voice.T.astype(np.float16))
        acc.append(f.accompaniment.T.astype(np.float16))
        names.append(row.clip)
        scale.append(f.scale)
        samples.append(audio.shape[1])
        srs.append(sr)
        samples_8k.append(f.samples_8k)
        offsets.append(offsets[-1] + f.mix_stft.shape[1])
    arrays = dict(
        format_version=np.array(FORMAT_VERSION),
        clips=np.array(names),
        offsets=np.array(offsets, dtype=np.int64),
        scale=np.array(scale, dtype=np.float32),
        samples=np.array(samples, dtype=np.int64),
        sr=np.array(srs, dtype=np.int64),
        samples_8k=np.array(samples_8k, dtype=np.int64),
        mix_stft=np.ascontiguousarray(np.concatenate(mix)),
        mix_nyquist=np.concatenate(nyq),
        voice=np.ascontiguousarray(np.concatenate(voice)),
        accompaniment=np.ascontiguousarray(np.concatenate(acc)),
    )
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return dict(clips=len(names), frames=offsets[-1], seconds=time.perf_counter() - t0)


class SpectrogramCache:
    """Read access to one split's cache file (memory-mapped, cheap to open)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(
                f"{self.path}: spectrogram cache not found; build it with `hourglass-sep cache`"
            )
        try:
            a = map_npz(self.path, "rebuild the cache")
        except zipfile.BadZipFile:
            raise UserError(
                f"{self.path}: not a spectrogram cache (corrupt or truncated); "
                "delete it and rebuild"
            ) from None
        missing = {"clips", "offsets", "scale", "mix_stft", "voice", "accompaniment"} - set(a)
        if missing:
            raise UserError(f"{self.path}: cache lacks {sorted(missing)}; delete it and rebuild")
        self._a = a
        self.clips: list[str] = [str(c) for c in a["clips"]]
        self.offsets = np.asarray(a["offsets"])
        self.scale = np.asarray(a["scale"])
        self.samples = np.asarray(a["samples"])
        self.sr = np.asarray(a["sr"])
        self.samples_8k = np.asarray(a["samples_8k"])
        self._index = {c: i for i, c in enumerate(self.clips)}

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def frames(self) -> np.ndarray:
        """Frames per clip."""
        return np.diff(self.offsets)

    def index(self, clip: str) -> int:
        try:
            return self._index[clip]
        except KeyError:
            raise UserError(f"{self.path}: clip {clip!r} is not in this cache") from None

    def _rows(self, i: int, start: int = 0, stop: int | None = None) -> slice:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        stop = b - a if stop is None else stop
        return slice(a + start, a + stop)

    def mix_stft(self, i: int) -> np.ndarray:
        """Complex mixture STFT ``(512, T)`` of clip ``i``."""
        return np.asarray(self._a["mix_stft"][self._rows(i)]).T

    def mix_nyquist(self, i: int) -> np.ndarray:
        """The mixture's Nyquist bin ``(T,)`` of clip ``i`` (zeros in caches without it)."""
        if "mix_nyquist" not in self._a:
            return np.zeros(int(self.frames[i]), dtype=np.complex64)
        return np.asarray(self._a["mix_nyquist"][self._rows(i)])

    def patch(self, i: int, start: int, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised (mixture, voice, accompaniment) magnitudes ``(512, frames)`` of clip ``i``.

        Frames ``start`` to ``start + frames``: one training patch, read without loading the clip.
        """
        r = self._rows(i, start, start + frames)
        mix = np.abs(self._a["mix_stft"][r]).T / max(float(self.scale[i]), 1e-12)
        return (
            mix.astype(np.float32),
            np.asarray(self._a["voice"][r], dtype=np.float32).T,
            np.asarray(self._a["accompaniment"][r], dtype=np.float32).T,
        )

    def clip(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised (mixture, voice, accompaniment) magnitudes of the whole clip."""
        return self.patch(i, 0, int(self.frames[i]))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--catalogue", required=True, help="clip catalogue TSV (from `hourglass-sep catalogue`)"
    )
    p.add_argument("--split", required=True, choices=["train", "test", "all"])
    p.add_argument(
        "--test-clips",
        type=int,
        default=None,
        help="test subset size (default: the catalogue's `evaluate` column, else all)",
    )
    p.add_argument("--subset-seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, help="cache file to write (.npz)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    df = cat.read_catalogue(args.catalogue)
    clips = cat.select(df, args.split, args.test_clips, args.subset_seed)
    info = write_cache(clips, args.output, progress=not args.no_progress)
    print(
        f"{args.output}: {info['clips']} clips, {info['frames']} frames x {N_BINS} bins "
        f"in {info['seconds']:.1f} s"
    )
    return 0
