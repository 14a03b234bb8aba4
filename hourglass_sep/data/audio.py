"""Audio I/O, resampling and atomic writes.

Everything that touches a file on disk goes through ``atomic_path`` so that a
crash or a kill never leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from hourglass_sep.errors import UserError

# what libsndfile reads (MP3 since libsndfile 1.1; Opus inside .ogg/.opus since 1.0.29)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    The temporary name keeps the suffix (soundfile and numpy pick formats by it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(
        tmp, 0o666 & ~umask
    )  # mkstemp makes 0600 files; products should be readable like any other
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``(channels, samples)`` and its sample rate.

    Raises ``UserError`` naming the file when it is missing, unreadable or empty.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(
            f"{path}: is a directory, expected an audio file ({', '.join(AUDIO_SUFFIXES)})"
        )
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (
        Exception
    ) as exc:  # soundfile raises several types (LibsndfileError, RuntimeError, TypeError)
        raise UserError(
            f"{path}: cannot read as audio ({exc}); expected a wav, flac or ogg file"
        ) from None
    if data.shape[0] == 0:
        raise UserError(f"{path}: the file holds no samples")
    return np.ascontiguousarray(data.T), int(sr)


def write_audio(
    path: str | os.PathLike, data: np.ndarray, sr: int, subtype: str = "PCM_16"
) -> None:
    """Atomically write float audio ``(channels, samples)`` or ``(samples,)``.

    Values are clipped to [-1, 1] before integer quantisation.
    """
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.T
    if subtype.startswith("PCM"):
        data = np.clip(data, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sr, subtype=subtype)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample along the last axis with soxr's HQ filter.

    Bit-identical to ``librosa.resample(x, res_type="soxr_hq")`` (the features the models were
    trained on) without importing librosa (~1.5 s): each row through ``soxr.resample``, then
    trimmed or zero-padded to ``ceil(n * sr_out / sr_in)`` samples as librosa does.
    """
    x = np.asarray(x, dtype=np.float32)
    if sr_in == sr_out:
        return x
    import soxr

    n_out = int(np.ceil(x.shape[-1] * float(sr_out) / sr_in))
    rows = x.reshape(-1, x.shape[-1])
    out = np.zeros((rows.shape[0], n_out), np.float32)
    for i, row in enumerate(rows):
        y = soxr.resample(row, sr_in, sr_out, quality="soxr_hq")
        out[i, : min(n_out, y.shape[-1])] = y[:n_out]
    return out.reshape(*x.shape[:-1], n_out)
