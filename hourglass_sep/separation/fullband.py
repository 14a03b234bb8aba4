"""The network's 8 kHz masks applied to the mixture at any rate: full-band output, in segments.

The network sees 0-4 kHz (8 kHz audio, STFT 1024/256: 512 bins of 7.8125 Hz, 31.25 frames
per second).  Its output for a song is turned into one *mask* per source — source
magnitude / mixture magnitude (the clipped masks themselves for mask targets) — and

* **full band** (songs, default): the mixture at its own rate ``sr`` gets an STFT on the
  same time-frequency grid in seconds and hertz (hop ``round(256 sr / 8000)``, window
  4 hops: 2048/512 at 16 kHz, 5644/1411 at 44.1 kHz).  Each of its bins takes the mask at
  its frequency and time, linearly interpolated between the network's bins and frames
  (identity at 16 kHz and 48 kHz, where the grids coincide).  Above 4 kHz, where the
  network saw nothing, a source gets, frame by frame, its share of the estimated energy
  in the top band 3-4 kHz (``E_s / (E_voice + E_acc)``, ``E_s = sum((mask_s |X|)^2)`` over
  those bins), so the stems add up to the mixture there.  Masked STFT -> inverse STFT at ``sr``:
  no resampling of the estimates, the mixture's phase and its content above 4 kHz kept.
* **8 kHz** (the report's protocol, ``full_band=False``): the masks multiply the 8 kHz
  mixture's STFT (Nyquist bin zero), inverse STFT at 8 kHz, soxr back to ``sr``.

Both run in blocks of output samples (each block's STFT takes the frames that touch it,
so the blocks join exactly as one inverse STFT would) and stream: the memory they need
does not grow with the song.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from hourglass_sep.data import features
from hourglass_sep.nets.model import uses_mask

TOP_BAND_HZ = (3000.0, 4000.0)
BLOCK_FRAMES = 640  # output block: 640 hops (20.5 s)


@dataclass(frozen=True)
class Grid:
    """An STFT grid at rate ``sr``: window ``n_fft`` (Hann), hop ``hop``, centred frames."""

    sr: int
    n_fft: int
    hop: int

    @classmethod
    def matching(cls, sr: int) -> Grid:
        """The grid at ``sr`` with the network's frame rate and bin spacing (4 hops a window)."""
        if sr == features.SR:
            return cls(sr, features.N_FFT, features.HOP)
        hop = max(1, round(features.HOP * sr / features.SR))
        return cls(int(sr), 4 * hop, hop)

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def frames(self, samples: int) -> int:
        return 1 + samples // self.hop


def source_masks(
    pred: np.ndarray, mix: np.ndarray, target: str, inplace: bool = False
) -> np.ndarray:
    """(2, 512, T) float32 voice and accompaniment masks from the last stack's prediction.

    The same estimates as ``model.sources_from_prediction`` (masks clipped at 0; one-mask
    targets give the other source ``max(1 - mask, 0)``; end-to-end magnitudes divided by
    the mixture's).  ``pred`` is (outputs, 512, T), ``mix`` the normalised magnitude;
    ``inplace``: ``pred`` (float32) may be overwritten (a long song's largest array).
    """
    p = np.asarray(pred, np.float32)
    p = np.maximum(p, 0.0, out=p if inplace else None)
    if target == "masks":
        return p
    if uses_mask(target):
        other = np.maximum(1.0 - p[0], 0.0)
        pair = (p[0], other) if target == "voice" else (other, p[0])
        return np.stack(pair)
    return p / np.maximum(mix, 1e-8)[None]


def top_band_masks(masks: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """(2, T): each source's share of the estimated energy in 3-4 kHz, frame by frame.

    ``E_s = sum((mask_s * |X|)^2)`` over the band's bins; the shares ``E_s / sum(E)`` sum
    to one, so above 4 kHz the stems add up to the mixture (a silent band: half each).
    The energy share beat the magnitude share ``sum(mask |X|) / sum(|X|)`` by 0.2 dB of
    voice SDR on 20 MIR-1K test clips (accompaniment within 0.05 dB).
    """
    per_bin = features.SR / features.N_FFT
    lo, hi = (int(round(f / per_bin)) for f in TOP_BAND_HZ)
    energy = ((masks[:, lo:hi] * mix[lo:hi][None]) ** 2).sum(1)  # (2, T)
    eps = 1e-12
    return (energy + eps) / (energy.sum(0, keepdims=True) + 2 * eps)


class MaskLookup:
    """Masks on another STFT grid: bilinear in (frequency, time), top-band masks above 4 kHz.

    Returns frames-major ``(2, frames, bins)`` blocks.  Where the grids coincide (frame
    times at 8, 16, 32, 48 kHz; bins at 8 kHz, and bins below 4 kHz at 16 kHz) the
    interpolation is skipped: the masks are taken as they are.
    """

    def __init__(self, masks: np.ndarray, mix: np.ndarray, grid: Grid, zero_nyquist: bool):
        top = top_band_masks(masks, mix)
        self.top = torch.from_numpy(np.zeros_like(top) if zero_nyquist else top)  # (2, T)
        self.masks = torch.from_numpy(masks)  # (2, 512, T), not copied
        hz = np.arange(grid.bins) * grid.sr / grid.n_fft
        q = np.clip(hz * features.N_FFT / features.SR, 0, features.N_BINS)
        q0 = np.floor(q).astype(np.int64)
        self.q0, self.q1 = torch.from_numpy(q0), torch.from_numpy(np.minimum(q0 + 1, q0.max()))
        self.wq = torch.from_numpy((q - q0).astype(np.float32))
        self.freq_integral = not self.wq.any()
        self.freq_identity = self.freq_integral and np.array_equal(q0, np.arange(513))
        self.frame_ratio = grid.hop * features.SR / (grid.sr * features.HOP)

    def _at(self, idx: torch.Tensor) -> torch.Tensor:
        """(2, len(idx), 513): the masks of the network's frames ``idx``, top band appended."""
        return torch.cat([self.masks[:, :, idx], self.top[:, None, idx]], 1).transpose(1, 2)

    def _frames(self, m0: int, m1: int) -> torch.Tensor:
        """(2, m1 - m0, 513): the masks at the grid's frame times (clamped at the end)."""
        T = self.masks.shape[-1]
        if self.frame_ratio == 1.0:
            return self._at(torch.clamp(torch.arange(m0, m1), max=T - 1))
        u = np.clip(np.arange(m0, m1) * self.frame_ratio, 0, T - 1)
        u0 = np.floor(u).astype(np.int64)
        wu = torch.from_numpy((u - u0).astype(np.float32))[None, :, None]
        u1 = torch.from_numpy(np.minimum(u0 + 1, T - 1))
        return self._at(torch.from_numpy(u0)) * (1 - wu) + self._at(u1) * wu

    def __call__(self, m0: int, m1: int) -> torch.Tensor:
        """Masks (2, m1 - m0, bins) for frames m0..m1-1 of the grid."""
        e = self._frames(m0, m1)
        if self.freq_identity:
            return e
        if self.freq_integral:
            return e[..., self.q0]
        return e[..., self.q0] * (1 - self.wq) + e[..., self.q1] * self.wq


def magnitude(x: np.ndarray, grid: Grid, block_frames: int = 4096) -> np.ndarray:
    """(512, frames) float32 |STFT| (bins 0..511) of ``x`` on ``grid``, computed in blocks.

    The numbers of ``features.stft(x).abs()`` (centred frames, zeros beyond the signal)
    without its whole-song complex intermediates (a 30-minute song: ~0.7 GB).
    """
    n, nf, hop = x.shape[-1], grid.n_fft, grid.hop
    frames = grid.frames(n)
    out = np.empty((features.N_BINS, frames), np.float32)
    window = torch.hann_window(nf, periodic=True)
    for m0 in range(0, frames, block_frames):
        m1 = min(frames, m0 + block_frames)
        seg = _segment(x, m0 * hop - nf // 2, (m1 - m0 - 1) * hop + nf)
        spec = torch.fft.rfft(torch.from_numpy(seg).unfold(0, nf, hop) * window)
        out[:, m0:m1] = spec[:, : features.N_BINS].abs().T.numpy()
    return out


def _segment(x: np.ndarray, start: int, length: int) -> np.ndarray:
    """``x[start : start + length]`` with zeros where that runs past either end."""
    seg = np.zeros(length, np.float32)
    lo, hi = max(start, 0), min(start + length, x.shape[-1])
    if hi > lo:
        seg[lo - start : hi - start] = x[lo:hi]
    return seg


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """(C, (F - 1) * hop + n) sum of (C, F, n) frames placed every ``hop`` (n a multiple)."""
    C, nfr, n = frames.shape
    r = n // hop
    out = frames.new_zeros(C, nfr + r - 1, hop)
    parts = frames.reshape(C, nfr, r, hop)
    for j in range(r):
        out[:, j : j + nfr] += parts[:, :, j]
    return out.reshape(C, -1)


def masked_blocks(
    mix: np.ndarray,
    grid: Grid,
    lookup: Callable[[int, int], torch.Tensor],
    block_frames: int = BLOCK_FRAMES,
) -> Iterator[np.ndarray]:
    """(2, samples) float32 blocks of the masked mixture's inverse STFT, covering ``mix``.

    Each block [a, b) takes the STFT frames that touch it (zeros beyond the signal, as a
    centred STFT pads), masks them, and overlap-adds them divided by the summed squared
    window: the blocks join into exactly one inverse STFT of the whole (up to rounding).
    """
    n, nf, hop = mix.shape[-1], grid.n_fft, grid.hop
    last = grid.frames(n) - 1
    window = torch.hann_window(nf, periodic=True)
    step = block_frames * hop
    for a in range(0, n, step):
        b = min(n, a + step)
        m0 = max(0, (a - nf // 2) // hop + 1)
        m1 = min(last, -(-(b + nf // 2) // hop) - 1) + 1
        start = m0 * hop - nf // 2  # x position of the first frame's first sample
        seg = _segment(mix, start, (m1 - m0 - 1) * hop + nf)
        spec = torch.fft.rfft(torch.from_numpy(seg).unfold(0, nf, hop) * window)  # (F, bins)
        waves = torch.fft.irfft(spec * lookup(m0, m1), n=nf) * window  # (2, F, n_fft)
        ola = overlap_add(waves, hop)
        env = overlap_add((window**2).expand(1, m1 - m0, nf), hop)[0]
        yield (ola[:, a - start : b - start] / env[a - start : b - start]).numpy()


def song_blocks(
    masks: np.ndarray,
    mag: np.ndarray,
    x8: np.ndarray,
    song: np.ndarray | Callable[[], np.ndarray],
    sr: int,
    n: int,
    full_band: bool = True,
) -> Iterator[np.ndarray]:
    """(2, m) float32 blocks at ``sr`` of masks ``(2, 512, T)`` found on ``mag``, the 8 kHz
    magnitude of ``x8``: full band on ``song`` (the mixture at ``sr``, ``n`` samples, or a
    function that fetches it), or the 8 kHz path (Nyquist bin zero) soxr'd back to ``sr``.

    A network's and a training-free method's songs end here.  The caller drops its own
    references to ``masks``, ``mag`` and ``x8`` once it has called this: the generator frees
    them as soon as its lookup is built, and fetches ``song`` only after that (the peak of a
    30-minute song is the masks plus one copy of the mixture, not two).
    """
    if full_band and sr != features.SR:
        grid = Grid.matching(sr)
        lookup = MaskLookup(masks, mag, grid, zero_nyquist=False)
        del masks, mag, x8
        yield from masked_blocks(song() if callable(song) else song, grid, lookup)
        return
    grid = Grid.matching(features.SR)
    lookup = MaskLookup(masks, mag, grid, zero_nyquist=True)  # the report's Nyquist: zero
    del masks, mag
    blocks = masked_blocks(x8, grid, lookup)
    if sr != features.SR:
        blocks = resampled_blocks(blocks, features.SR, sr, n)
    yield from blocks


def resampled_blocks(blocks: Iterator[np.ndarray], sr_in: int, sr_out: int, n_out: int):
    """Stream (2, m) blocks from ``sr_in`` to ``sr_out`` (soxr HQ), exactly ``n_out`` samples."""
    import soxr

    stream = soxr.ResampleStream(sr_in, sr_out, 2, dtype="float32", quality="HQ")
    done = 0
    pending = next(blocks, None)
    while pending is not None:
        following = next(blocks, None)
        out = stream.resample_chunk(np.ascontiguousarray(pending.T), last=following is None)
        out = out.T[:, : n_out - done]
        done += out.shape[1]
        if out.shape[1]:
            yield np.ascontiguousarray(out)
        pending = following
    if done < n_out:
        yield np.zeros((2, n_out - done), np.float32)
