"""The course report's features, exactly: 8 kHz, STFT 1024/256 Hann, bins 0..511, max-normalised.

Both Park's TensorFlow code and the course report's PyTorch code compute:
    mixture = mean of the two channels (left = accompaniment, right = voice)
    resample 16 kHz -> 8 kHz, STFT (n_fft 1024, hop 256, Hann, centred), drop the
    Nyquist bin, linear magnitude divided by the clip's max mixture magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hourglass_sep.data.audio import resample

SR = 8000
N_FFT = 1024
HOP = 256
N_BINS = 512  # bins 0..511; the Nyquist bin (512) is dropped
EPS = 1e-12


def _window(device=None, dtype=torch.float32) -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, device=device, dtype=dtype)


def stft(wave: np.ndarray | torch.Tensor, keep_nyquist: bool = False) -> torch.Tensor:
    """Complex STFT ``(..., 512, frames)`` of 8 kHz audio ``(..., samples)``.

    Centred frames with zero padding (librosa's ``center=True, pad_mode='constant'``).
    ``keep_nyquist=True`` returns all 513 bins (for an exact inverse).
    """
    x = torch.as_tensor(wave, dtype=torch.float32)
    shape = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])
    spec = torch.stft(
        x,
        N_FFT,
        HOP,
        window=_window(x.device),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    if not keep_nyquist:
        spec = spec[:, :N_BINS]
    return spec.reshape(*shape, spec.shape[-2], spec.shape[-1])


def istft(
    spec: np.ndarray | torch.Tensor, length: int, nyquist: np.ndarray | torch.Tensor | None = None
) -> torch.Tensor:
    """Inverse of :func:`stft`.

    ``spec`` has 512 bins (the Nyquist bin is then taken from ``nyquist``, or zero as in
    the course report's separation) or all 513.
    """
    spec = _tensor(spec)
    shape = spec.shape[:-2]
    s = spec.reshape(-1, *spec.shape[-2:])
    if s.shape[1] == N_BINS:
        top = (
            torch.zeros_like(s[:, :1])
            if nyquist is None
            else _tensor(nyquist).reshape(s.shape[0], 1, -1).to(s.dtype)
        )
        s = torch.cat([s, top], dim=1)
    out = torch.istft(
        s, N_FFT, HOP, window=_window(s.device, s.real.dtype), center=True, length=length
    )
    return out.reshape(*shape, length)


def _tensor(x) -> torch.Tensor:
    """A tensor of ``x``; numpy inputs are copied (memory-mapped caches are read-only)."""
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x))


def n_frames(samples_8k: int) -> int:
    """Number of STFT frames of a signal of ``samples_8k`` samples at 8 kHz."""
    return 1 + samples_8k // HOP


@dataclass
class ClipFeatures:
    """Features of one MIR-1K-format clip.

    ``mix_stft`` is the complex STFT of the 8 kHz mixture (unnormalised: separation
    needs its phase and magnitude); ``scale`` is the clip's max mixture magnitude;
    ``voice``/``accompaniment``/``mixture`` are the normalised magnitudes the network sees.
    """

    mix_stft: np.ndarray  # complex64 (512, T)
    nyquist: np.ndarray  # complex64 (T,): the mixture's Nyquist bin (not used by the network)
    scale: float
    mixture: np.ndarray  # float32 (512, T), |mix_stft| / scale
    voice: np.ndarray | None  # float32 (512, T)
    accompaniment: np.ndarray | None
    samples_8k: int


def mixture_8k(stereo: np.ndarray, sr: int) -> np.ndarray:
    """Mean of the channels (mono passes through), resampled to 8 kHz."""
    mono = stereo.mean(axis=0) if stereo.ndim == 2 else stereo
    return resample(mono, sr, SR)


def clip_features(stereo: np.ndarray, sr: int, with_sources: bool = True) -> ClipFeatures:
    """Features of a MIR-1K clip given as ``(2, samples)`` (left = accompaniment, right = voice).

    With ``with_sources=False`` any channel count is accepted (a song to separate).
    """
    stereo = np.asarray(stereo, dtype=np.float32)
    if with_sources:
        if stereo.ndim != 2 or stereo.shape[0] != 2:
            raise ValueError(f"expected (2, samples) MIR-1K audio, got shape {stereo.shape}")
        waves = resample(np.stack([stereo.mean(axis=0), stereo[1], stereo[0]]), sr, SR)
    else:
        waves = mixture_8k(stereo, sr)[None]
    full = stft(waves, keep_nyquist=True).numpy()
    spec = full[:, :N_BINS]
    mags = np.abs(spec)
    scale = float(mags[0].max())
    denom = max(scale, EPS)
    return ClipFeatures(
        mix_stft=spec[0].astype(np.complex64),
        nyquist=full[0, N_BINS].astype(np.complex64),
        scale=scale,
        mixture=(mags[0] / denom).astype(np.float32),
        voice=(mags[1] / denom).astype(np.float32) if with_sources else None,
        accompaniment=(mags[2] / denom).astype(np.float32) if with_sources else None,
        samples_8k=int(waves.shape[-1]),
    )
