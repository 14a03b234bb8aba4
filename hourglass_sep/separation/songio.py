"""Songs in and stems out: which files to separate, reading a mixture, writing the stems.

Inputs are audio files (wav, flac, ogg/opus, mp3, aiff: whatever libsndfile reads) or
folders (every audio file directly inside, sorted).  Outputs go to
``OUT/<song>/<stem>.<ext>`` (``<song>`` is the input's name without its suffix); a song's
stems are written as they are computed into temporary files beside their final names
and renamed when the song is done, so a failure never leaves a half-written stem and
never touches what earlier songs wrote.  Every error names the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from hourglass_sep.data.audio import AUDIO_SUFFIXES, atomic_path
from hourglass_sep.errors import UserError

STEMS = ("voice", "accompaniment")
FORMATS = ("wav", "flac")
BIT_DEPTHS = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}
READ_BLOCK = 1 << 20  # frames per read


def parse_stems(text: str) -> tuple[str, ...]:
    """``"voice,accompaniment"`` -> the stems to write, in that order, each once."""
    stems = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    bad = [s for s in stems if s not in STEMS]
    if bad or not stems:
        raise UserError(
            f"--stems {text!r}: choose one or more of {', '.join(STEMS)}, comma-separated"
        )
    return stems


def output_subtype(fmt: str, depth: str) -> str:
    """libsndfile subtype of ``--format``/``--bit-depth``; FLAC has no float samples."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if depth not in BIT_DEPTHS:
        raise UserError(f"--bit-depth {depth!r}: choose one of {', '.join(BIT_DEPTHS)}")
    if fmt == "flac" and depth == "float":
        raise UserError("--format flac stores integers only: use --bit-depth 16 or 24 (or wav)")
    return BIT_DEPTHS[depth]


def expand_inputs(items: Sequence[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """(audio files to separate, problems) for files and folders given on the command line.

    A folder stands for the audio files directly inside it; a folder without any is a
    problem, as is a missing path.  Problems are messages naming the path.
    """
    files: list[Path] = []
    problems: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES
            )
            if not found:
                problems.append(f"{p}: folder holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
            files += found
        elif not p.exists():
            problems.append(f"{p}: no such file")
        else:
            files.append(p)
    return list(dict.fromkeys(files)), problems


def check_input(path: Path) -> None:
    """Refuse an empty, unreadable or sample-less file before any work starts."""
    import soundfile as sf

    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty (0 bytes); expected an audio file")
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise UserError(
            f"{path}: cannot read as audio ({_first_line(exc)}); expected an audio file "
            f"libsndfile reads ({', '.join(AUDIO_SUFFIXES)})"
        ) from None
    if info.frames == 0:
        raise UserError(f"{path}: the file holds no samples")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def read_mixture(path: Path) -> tuple[np.ndarray, int, int]:
    """(mono mixture float32 (n,), sample rate, channels) of an audio file, read in blocks.

    The channels are averaged block by block into one preallocated array, so a long
    multi-channel file never sits in memory whole.  Non-finite samples and decoding
    failures raise ``UserError`` naming the file (and the time of the first bad sample).
    """
    import soundfile as sf

    done = 0
    try:
        with sf.SoundFile(str(path)) as f:
            sr, channels = int(f.samplerate), int(f.channels)
            mono = np.empty(max(int(f.frames), 0), np.float32)
            for block in f.blocks(blocksize=READ_BLOCK, dtype="float32", always_2d=True):
                _check_finite(path, block, done, sr)
                if done + len(block) > len(mono):  # a header that undercounts: grow
                    mono = np.concatenate([mono[:done], np.empty(len(block) + done, np.float32)])
                np.mean(block, axis=1, dtype=np.float32, out=mono[done : done + len(block)])
                done += len(block)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(
            f"{path}: cannot decode ({_first_line(exc)}) after {done} samples; the file is "
            "damaged or truncated"
        ) from None
    if not done:
        raise UserError(f"{path}: the file holds no samples")
    return mono[:done], sr, channels


def _check_finite(path: Path, block: np.ndarray, done: int, sr: int) -> None:
    bad = ~np.isfinite(block).all(axis=1)
    if bad.any():
        at = (done + int(np.argmax(bad))) / sr
        raise UserError(
            f"{path}: holds NaN or infinite samples (first at {at:.3f} s); the file is "
            "damaged — re-export it"
        )


def plan_outputs(
    inputs: Sequence[Path], out_dir: Path, stems: Sequence[str], ext: str
) -> dict[Path, dict[str, Path]]:
    """``OUT/<song>/<stem>.<ext>`` of every input; refuses outputs that would clash.

    Two inputs with the same name (``a/song.wav`` and ``b/song.flac``) would overwrite
    each other's stems, and an output may not be one of the inputs.
    """
    in_resolved = {p.resolve(): p for p in inputs}
    owner: dict[Path, Path] = {}
    plan: dict[Path, dict[str, Path]] = {}
    for p in inputs:
        plan[p] = {s: out_dir / p.stem / f"{s}.{ext}" for s in stems}
        for t in plan[p].values():
            r = t.resolve()
            if r in in_resolved:
                raise UserError(
                    f"{t}: output would overwrite the input {in_resolved[r]}; choose another "
                    "-o folder or rename the input"
                )
            if r in owner and owner[r] != p:
                raise UserError(
                    f"{owner[r]} and {p} have the same name {p.stem!r}: their outputs would "
                    "overwrite each other; separate them into different -o folders or rename one"
                )
            owner[r] = p
    return plan


def write_stems(
    paths: dict[str, Path], sr: int, subtype: str, blocks: Iterable[tuple[np.ndarray, ...]]
) -> tuple[int, float]:
    """Stream (voice, accompaniment) blocks into the stems in ``paths``; (samples, peak |x|).

    Integer formats clip to [-1, 1].  All stems appear under their final names together,
    once the last block is written; on any error none of them does.
    """
    import soundfile as sf

    index = {s: STEMS.index(s) for s in paths}
    peak, samples = 0.0, 0
    with contextlib.ExitStack() as stack:
        files = {}
        for stem, path in paths.items():
            tmp = stack.enter_context(atomic_path(path))
            files[stem] = stack.enter_context(
                sf.SoundFile(str(tmp), "w", sr, 1, subtype, format=path.suffix[1:].upper())
            )
        for block in blocks:
            samples += len(block[0])
            for stem, f in files.items():
                x = np.asarray(block[index[stem]], np.float32)
                peak = max(peak, float(np.abs(x).max(initial=0.0)))
                f.write(np.clip(x, -1.0, 1.0) if subtype.startswith("PCM") else x)
        for f in files.values():
            f.close()  # flush before the renames (ExitStack unwinds: files first, then renames)
    return samples, peak
