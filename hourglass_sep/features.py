"""The seed's features, exactly: 8 kHz, STFT 1024/256 Hann, bins 0..511, max-normalised.

Both Park's TensorFlow code and the seed's PyTorch code compute:
    mixture = mean of the two channels (left = accompaniment, right = voice)
    resample 16 kHz -> 8 kHz, STFT (n_fft 1024, hop 256, Hann, centred), drop the
    Nyquist bin, linear magnitude divided by the clip's max mixture magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .audio import resample

SR = 8000
N_FFT = 1024
HOP = 256
N_BINS = 512  # bins 0..511; the Nyquist bin (512) is dropped
EPS = 1e-12


def _window(device=None, dtype=torch.float32) -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, device=device, dtype=dtype)


def stft(wave: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Complex STFT ``(..., 512, frames)`` of 8 kHz audio ``(..., samples)``.

    Centred frames with zero padding (librosa's ``center=True, pad_mode='constant'``).
    """
    x = torch.as_tensor(wave, dtype=torch.float32)
    shape = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])
    spec = torch.stft(x, N_FFT, HOP, window=_window(x.device), center=True, pad_mode="constant", return_complex=True)
    return spec[:, :N_BINS].reshape(*shape, N_BINS, spec.shape[-1])


def istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`; the dropped Nyquist bin is restored as zero."""
    spec = torch.as_tensor(spec)
    shape = spec.shape[:-2]
    s = spec.reshape(-1, *spec.shape[-2:])
    s = torch.cat([s, torch.zeros_like(s[:, :1])], dim=1)
    out = torch.istft(s, N_FFT, HOP, window=_window(s.device, s.real.dtype), center=True, length=length)
    return out.reshape(*shape, length)


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
    spec = stft(waves).numpy()
    mags = np.abs(spec)
    scale = float(mags[0].max())
    denom = max(scale, EPS)
    return ClipFeatures(
        mix_stft=spec[0].astype(np.complex64),
        scale=scale,
        mixture=(mags[0] / denom).astype(np.float32),
        voice=(mags[1] / denom).astype(np.float32) if with_sources else None,
        accompaniment=(mags[2] / denom).astype(np.float32) if with_sources else None,
        samples_8k=int(waves.shape[-1]),
    )
