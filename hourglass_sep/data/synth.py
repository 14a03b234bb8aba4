"""The built-in synthetic MIR-1K-format corpus (``hourglass-sep synth``).

A stand-in for MIR-1K that needs no download: short clips of synthetic songs, each a
stereo 16 kHz 16-bit wav with the accompaniment on the left and the voice on the right,
named ``<singer>_<song>_<clip>.wav`` under ``<dest>/Wavfile/``.  The singers include
``abjones`` and ``amy`` (MIR-1K's training singers), so the usual split applies: train on
their clips, test on the other singers'.

It is meant to be a real (if small) separation problem, not a toy:

voice
    a band-limited harmonic source (up to 7.6 kHz, so 10 to 100 partials) with the
    singer's glottal tilt, driven by an f0 contour that follows a melody written in the
    song's key over its chords, with portamento between notes, scoops into notes after a
    breath, delayed vibrato, slow drift and jitter; every syllable gets its own vowel
    (cascade of four formant resonances, per-singer formant shift and bandwidths, an
    optional singer's formant, diphthongs and nasal consonants as formant transitions),
    an attack/release envelope with gaps between non-legato notes, unvoiced consonant
    noise bursts (fricatives, plosives) at syllable onsets, aspiration noise, inhalations
    before phrases, and the singer's room (a short reverb / echo).
accompaniment
    per song: key, mode, tempo, metre, chord progression and an instrument mix drawn from
    pads (detuned saw), organ drawbars, strings (with vibrato, like the voice), piano and
    strummed guitar (decaying, brightness falling with time), arpeggios, a bass line,
    drums (pitched kick, snare, hi-hats, crashes) and, in some songs, a lead instrument
    that plays fills whenever the voice rests (with vibrato, in the voice's register).
    Chord voicings sit in the voice's register, so their harmonics overlap the voice's.
mix
    voice-to-accompaniment ratio drawn per clip in +-``var_db`` dB (MIR-1K itself stores
    both channels at equal loudness), joint peak normalisation below 0.9 of full scale,
    and about a third of the clips hold an instrumental passage (intro, interlude or
    outro without voice).

Everything is drawn from ``numpy`` generators seeded by ``SeedSequence``s of
``(seed, what, names...)``: a singer's voice from (seed, singer), a song's style from
(seed, singer, song), a clip's melody, lyrics and mix from (seed, clip name).  The
output is therefore byte-identical for the same arguments and independent of ``--jobs``.

Files are written atomically; ``<dest>/synth.json`` (the parameters and a table of the
clips) is written last, so its absence marks an incomplete corpus.  ``<dest>/.synth-
manifest.json`` lists the clips this command has written into the folder: a later run
replaces those (a different seed, fewer singers...) but refuses to touch or mix with
audio files it did not write (e.g. the real MIR-1K).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy import signal
from tqdm import tqdm

from hourglass_sep.data.audio import AUDIO_SUFFIXES, atomic_path, write_audio
from hourglass_sep.data.catalogue import TRAIN_SINGERS
from hourglass_sep.errors import UserError

log = logging.getLogger(__name__)

FORMAT = "hourglass-sep-synth/1"
GENERATOR = 1  # bump whenever the audio produced for given arguments changes
SR = 16000
HOP = 32  # control-rate hop in samples (500 Hz)
TABLE = 2048  # wavetable length
F_MAX = 7600.0  # highest partial (Hz)
MANIFEST = ".synth-manifest.json"
INFO = "synth.json"

# Made-up singer names for the test singers (lowercase alphanumeric, as MIR-1K's), alternately
# for the female (alto, soprano) and male (tenor, baritone) voices of VOICE_CYCLE.
MADE_UP_SINGERS = (
    "dalia",
    "corvin",
    "isolde",
    "emrys",
    "maelis",
    "galen",
    "rowena",
    "fenwick",
    "tamsin",
    "jorvik",
    "vesna",
    "selwyn",
    "zinnia",
    "ulric",
    "lunet",
    "wystan",
    "orla",
    "pellam",
    "yarrow",
    "quill",
    "hollis",
    "nyro",
    "kestrel",
    "bexley",
)
# MIDI range (low, high) of each voice type; abjones sings baritone, amy alto (MIR-1K: male,
# female).
VOICE_RANGES = {"baritone": (43, 64), "tenor": (48, 69), "alto": (53, 74), "soprano": (58, 79)}
VOICE_CYCLE = ("alto", "tenor", "soprano", "baritone")

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PROGRESSIONS = {  # scale degrees, 0-based
    "major": (
        (0, 4, 5, 3),
        (5, 3, 0, 4),
        (0, 5, 3, 4),
        (0, 3, 4, 3),
        (1, 4, 0, 5),
        (0, 3, 5, 4),
        (3, 4, 2, 5),
        (0, 2, 3, 4),
    ),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4), (0, 2, 5, 4)),
}
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# Formants F1..F4 (Hz, adult male) and intrinsic level of the vowels and voiced consonants.
VOWELS = {
    "a": ((730, 1090, 2440, 3400), 1.0),
    "e": ((530, 1840, 2480, 3470), 0.9),
    "i": ((300, 2250, 2950, 3650), 0.75),
    "o": ((570, 840, 2410, 3350), 0.95),
    "u": ((320, 870, 2240, 3300), 0.7),
    "@": ((500, 1450, 2500, 3450), 0.85),
}
VOWEL_LIST = tuple(VOWELS)
VOWEL_P = np.array([0.26, 0.18, 0.17, 0.16, 0.11, 0.12])
VOICED_CONS = {
    "m": ((280, 1100, 2200, 3300), 0.3),
    "n": ((280, 1600, 2600, 3400), 0.3),
    "l": ((360, 1300, 2700, 3400), 0.45),
}
BANDWIDTHS = np.array([80.0, 100.0, 140.0, 200.0])
# Unvoiced consonants: kind, centre Hz, width (octaves), duration range (s), level.
UNVOICED_CONS = {
    "s": ("fric", 5200, 0.45, (0.08, 0.13), 0.30),
    "sh": ("fric", 3000, 0.55, (0.08, 0.12), 0.32),
    "f": ("fric", 3500, 1.3, (0.06, 0.10), 0.09),
    "h": ("fric", 1600, 1.1, (0.05, 0.09), 0.12),
    "ch": ("affr", 3200, 0.6, (0.05, 0.08), 0.35),
    "t": ("plos", 4000, 0.8, (0.012, 0.025), 0.45),
    "k": ("plos", 2100, 0.6, (0.02, 0.035), 0.40),
    "p": ("plos", 1000, 1.0, (0.01, 0.02), 0.35),
}
CONS_LIST = ("", "m", "n", "l") + tuple(UNVOICED_CONS)
CONS_P = np.array([0.22, 0.09, 0.10, 0.08, 0.10, 0.06, 0.05, 0.07, 0.04, 0.07, 0.07, 0.05])
HARMONIC_INSTRUMENTS = ("pad", "organ", "strings", "piano", "guitar", "arp")
HARMONIC_P = np.array([0.2, 0.14, 0.14, 0.2, 0.2, 0.12])


# ----------------------------------------------------------------------------- randomness


def _key(x: object) -> int:
    return zlib.crc32(str(x).encode("utf-8"))


def _rng(seed: int, *keys: object) -> np.random.Generator:
    """A generator for one purpose, seeded by (seed, keys...) only."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *(_key(k) for k in keys)]))


def _smooth_noise(rng: np.random.Generator, n: int, tau_frames: float) -> np.ndarray:
    """Low-pass noise with unit standard deviation (time constant in samples of the array)."""
    a = math.exp(-1.0 / max(tau_frames, 1e-3))
    x = signal.lfilter([1 - a], [1, -a], rng.standard_normal(n + int(3 * tau_frames)))[
        int(3 * tau_frames) :
    ]
    return x / (x.std() + 1e-12)


def _onepole(x: np.ndarray, tau_frames: float) -> np.ndarray:
    a = math.exp(-1.0 / max(tau_frames, 1e-3))
    return signal.lfilter([1 - a], [1, -a], x, zi=[a * x[0]])[0]


def _shaped_noise(
    rng: np.random.Generator, n: int, centre: float, width_oct: float, floor: float = 0.0
) -> np.ndarray:
    """White noise band-shaped with a Gaussian in log-frequency; unit RMS."""
    m = sfft.next_fast_len(n, real=True)
    X = sfft.rfft(rng.standard_normal(m))
    f = np.fft.rfftfreq(m, 1.0 / SR)
    lf = np.log2(np.maximum(f, 20.0) / centre)
    X *= np.exp(-0.5 * (lf / width_oct) ** 2) + floor
    y = sfft.irfft(X, m)[:n]
    return y / (np.sqrt(np.mean(y**2)) + 1e-12)


def _smoothstep(n: int, up: bool = True) -> np.ndarray:
    x = np.linspace(0.0, 1.0, max(n, 1))
    y = x * x * (3 - 2 * x)
    return y if up else y[::-1]


def midi_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


# ----------------------------------------------------------------------------- wavetables


def _tables(amps: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Wavetables ``(..., TABLE + 1)`` of harmonics 1..H with ``amps (..., H)``.

    The last sample repeats the first, so linear interpolation needs no wrap-around test.
    """
    amps = np.atleast_2d(amps)
    h = amps.shape[-1]
    spec = np.zeros(amps.shape[:-1] + (TABLE // 2 + 1,), dtype=np.complex128)
    spec[..., 1 : h + 1] = amps * np.exp(1j * phases[:h]) * (TABLE / 2)
    tab = np.fft.irfft(spec, TABLE, axis=-1)
    return np.concatenate([tab, tab[..., :1]], axis=-1)


def _lookup(tab: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Read a wavetable (TABLE + 1,) at phases in cycles, linear interpolation."""
    idx = (phase - np.floor(phase)) * TABLE
    i = idx.astype(np.int64)
    fr = idx - i
    a = tab[i]
    return a + fr * (tab[i + 1] - a)


def _harmonics(f0: float, limit: float = F_MAX) -> np.ndarray:
    """Harmonic numbers 1..H with H * f0 below ``limit``."""
    return np.arange(1, max(1, min(TABLE // 2 - 1, int(limit // f0))) + 1, dtype=np.float64)


# ----------------------------------------------------------------------------- singers


@dataclass
class Singer:
    name: str
    index: int
    kind: str
    lo: int
    hi: int
    female: bool
    fshift: float  # formant scaling (vocal tract length)
    tilt: float  # source slope: partial amplitudes ~ h**-tilt
    breath: float  # aspiration noise level
    bw: float  # formant bandwidth scale
    sformant: float  # singer's-formant boost
    sformant_hz: float
    vib_rate: float
    vib_depth: float  # semitones
    vib_delay: float
    porta: float  # portamento time constant (s)
    scoop: float  # semitones below the target at the start of a note after a gap
    scoop_p: float
    fall_p: float  # probability of a pitch fall at the end of a phrase-final or detached note
    sloppiness: float  # per-note intonation error (semitones, sd)
    drift: float  # slow pitch drift (semitones, sd)
    attack: float
    release: float
    cons_level: float
    phases: np.ndarray = field(repr=False)


def singer_names(n: int) -> list[str]:
    """``abjones``, ``amy`` and then made-up names (with a digit suffix beyond 26 singers)."""
    names = list(TRAIN_SINGERS)[: max(n, 0)]
    i = 0
    while len(names) < n:
        base = MADE_UP_SINGERS[i % len(MADE_UP_SINGERS)]
        rnd = i // len(MADE_UP_SINGERS)
        names.append(base if rnd == 0 else f"{base}{rnd + 1}")
        i += 1
    return names


def make_singer(seed: int, index: int, name: str) -> Singer:
    rng = _rng(seed, "singer", name)
    if name == TRAIN_SINGERS[0]:
        kind = "baritone"
    elif name == TRAIN_SINGERS[1]:
        kind = "alto"
    else:
        kind = VOICE_CYCLE[(index - 2) % len(VOICE_CYCLE)]
    lo, hi = VOICE_RANGES[kind]
    shift = int(rng.integers(-2, 3))
    female = kind in ("alto", "soprano")
    return Singer(
        name=name,
        index=index,
        kind=kind,
        lo=lo + shift,
        hi=hi + shift,
        female=female,
        fshift=(1.17 if female else 1.0) * rng.uniform(0.94, 1.06),
        tilt=rng.uniform(1.2, 1.8),
        breath=rng.uniform(0.015, 0.06),
        bw=rng.uniform(0.85, 1.35),
        sformant=rng.uniform(0.0, 0.8),
        sformant_hz=rng.uniform(2700, 3200) * (1.08 if female else 1.0),
        vib_rate=rng.uniform(4.6, 6.4),
        vib_depth=rng.uniform(0.15, 0.6),
        vib_delay=rng.uniform(0.12, 0.35),
        porta=rng.uniform(0.012, 0.04),
        scoop=rng.uniform(0.8, 3.0),
        scoop_p=rng.uniform(0.3, 0.9),
        fall_p=rng.uniform(0.1, 0.5),
        sloppiness=rng.uniform(0.02, 0.2),
        drift=rng.uniform(0.04, 0.14),
        attack=rng.uniform(0.015, 0.05),
        release=rng.uniform(0.04, 0.1),
        cons_level=rng.uniform(0.6, 1.3),
        phases=rng.uniform(0, 2 * np.pi, TABLE // 2),
    )


# ----------------------------------------------------------------------------- songs


@dataclass
class Song:
    singer: str
    id: str
    tonic: int
    mode: str
    bpm: float
    bpb: int  # beats per bar
    swing: float
    chords: list  # one (root_pc, pcs) per bar of the cycle
    span: list  # per bar of the cycle: (offset in the chord's span, span length) in bars
    progression: tuple
    bars_per_chord: int
    scale_notes: np.ndarray  # melody notes (MIDI) of the key within the melody register
    dur_vals: np.ndarray
    dur_p: np.ndarray
    legato: float
    phrase_beats: tuple
    instruments: list  # dicts with "kind", "gain" and timbre parameters
    drums: dict | None
    lead: dict | None
    reverb: tuple  # (rt60, wet) of the accompaniment
    voice_room: tuple  # (rt60, wet, echo delay, echo gain) of the voice
    kit_seed: int

    @property
    def beat(self) -> float:
        return 60.0 / self.bpm

    @property
    def bar(self) -> float:
        return self.bpb * self.beat

    def chord(self, bar: int):
        return self.chords[bar % len(self.chords)]

    def span_start(self, bar: int) -> tuple[int, int]:
        off, length = self.span[bar % len(self.span)]
        return bar - off, length

    def step_time(self, bar: int, step: float) -> float:
        """Song time (s) of a 16th-note step in a bar, with swing on the off-beat 8ths."""
        s16 = self.beat / 4
        t = bar * self.bar + step * s16
        if self.swing and int(step) % 4 == 2 and step == int(step):
            t += self.swing * 2 * s16
        return t

    def describe(self) -> dict:
        return {
            "key": f"{KEY_NAMES[self.tonic]} {self.mode}",
            "bpm": round(self.bpm, 1),
            "metre": f"{self.bpb}/4",
            "progression": [int(d) + 1 for d in self.progression],
            "bars_per_chord": self.bars_per_chord,
            "instruments": [i["kind"] for i in self.instruments]
            + ([f"drums:{self.drums['style']}"] if self.drums else [])
            + ([f"lead:{self.lead['timbre']}"] if self.lead else []),
        }


def _chord(
    tonic: int, scale: tuple, degree: int, seventh: bool, raise_third: bool
) -> tuple[int, tuple]:
    ivs = []
    for k in range(4 if seventh else 3):
        d = degree + 2 * k
        ivs.append(scale[d % 7] + 12 * (d // 7))
    if raise_third:
        ivs[1] += 1
    pcs = tuple(sorted({(tonic + iv) % 12 for iv in ivs}, key=lambda p: (p - tonic - ivs[0]) % 12))
    return (tonic + ivs[0]) % 12, pcs


def _song_harmony(rng: np.random.Generator) -> tuple:
    """Key, tempo, metre and the chord of each bar of the cycle.

    Drawn first, in this order, so a song's random stream (and the corpus) stays stable.
    """
    tonic = int(rng.integers(12))
    mode = "minor" if rng.random() < 0.4 else "major"
    scale = MINOR if mode == "minor" else MAJOR
    bpm = float(np.round(rng.uniform(66, 142)))
    bpb = 3 if rng.random() < 0.15 else 4
    progs = PROGRESSIONS[mode]
    prog = progs[int(rng.integers(len(progs)))]
    bars_per_chord = int(rng.choice([1, 2], p=[0.55, 0.45] if bpm > 100 else [0.75, 0.25]))
    sevenths = rng.random() < 0.3
    harmonic_v = mode == "minor" and rng.random() < 0.5
    chords, span = [], []
    for d in prog:
        ch = _chord(tonic, scale, d, sevenths and rng.random() < 0.6, harmonic_v and d == 4)
        for k in range(bars_per_chord):
            chords.append(ch)
            span.append((k, bars_per_chord))
    return tonic, mode, scale, bpm, bpb, prog, bars_per_chord, chords, span


def _melody_notes(rng: np.random.Generator, singer: Singer, tonic: int, scale: tuple) -> np.ndarray:
    """The key's notes in a 12-17 semitone register inside the singer's range."""
    width = int(rng.integers(12, 18))
    lo = int(
        np.clip(
            round(singer.lo + (singer.hi - singer.lo - width) * rng.uniform(0.2, 0.8)),
            singer.lo,
            singer.hi - width,
        )
    )
    pcs = {(tonic + s) % 12 for s in scale}
    return np.array([m for m in range(lo, lo + width + 1) if m % 12 in pcs])


def _note_values(rng: np.random.Generator, bpm: float) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Note values (beats), their probabilities and phrase lengths (beats) for the tempo.

    Note values sit around a preferred syllable length of 0.25-0.45 s (2-4 syllables a
    second) whatever the tempo; phrases last 1.5-4.5 s.
    """
    beat = 60.0 / bpm
    dur_vals = np.array([0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
    pref = rng.uniform(0.22, 0.4)
    dur_p = np.exp(-0.5 * (np.log(dur_vals * beat / pref) / 0.45) ** 2) * np.array(
        [0.6, 1.0, 0.5, 1.0, 0.4, 0.3]
    )
    dur_p /= dur_p.sum()
    phrase_beats = tuple(sorted({max(2, int(round(sec / beat))) for sec in (1.6, 2.4, 3.2, 4.2)}))
    return dur_vals, dur_p, phrase_beats


def _arrangement(
    rng: np.random.Generator, bpm: float, bpb: int, scale_notes: np.ndarray
) -> tuple[list[dict], dict | None, dict | None]:
    """The accompaniment: 2-4 harmonic instruments, usually bass and drums, maybe a lead."""
    k = int(rng.integers(2, 5))
    kinds = list(rng.choice(HARMONIC_INSTRUMENTS, size=k, replace=False, p=HARMONIC_P))
    instruments = [_make_instrument(rng, kind, bpm, bpb) for kind in sorted(kinds)]
    if rng.random() < 0.92:
        instruments.append(_make_instrument(rng, "bass", bpm, bpb))
    drums = _make_drums(rng, bpb) if rng.random() < 0.85 else None
    lead = None
    if rng.random() < 0.45:
        centre = float(np.mean(scale_notes)) + rng.uniform(-3, 5)
        lead = dict(
            kind="lead",
            timbre=str(rng.choice(["flute", "reed", "synth"])),
            gain=10 ** (rng.uniform(-3, 2) / 20),
            lo=int(centre - 7),
            hi=int(centre + 7),
            vib_rate=rng.uniform(4.8, 6.2),
            vib_depth=rng.uniform(0.08, 0.3),
            phases=rng.uniform(0, 2 * np.pi, TABLE // 2),
        )
    return instruments, drums, lead


def make_song(seed: int, singer: Singer, song_id: str) -> Song:
    """One song of a singer, from its own random stream (seed, singer, song) only.

    So every clip of the song hears the same key, tempo and band, and changing the corpus
    size leaves the songs that stay unchanged.
    """
    rng = _rng(seed, "song", singer.name, song_id)
    tonic, mode, scale, bpm, bpb, prog, bars_per_chord, chords, span = _song_harmony(rng)
    scale_notes = _melody_notes(rng, singer, tonic, scale)
    dur_vals, dur_p, phrase_beats = _note_values(rng, bpm)
    instruments, drums, lead = _arrangement(rng, bpm, bpb, scale_notes)
    return Song(
        singer=singer.name,
        id=song_id,
        tonic=tonic,
        mode=mode,
        bpm=bpm,
        bpb=bpb,
        swing=float(rng.uniform(0.08, 0.16)) if rng.random() < 0.2 else 0.0,
        chords=chords,
        span=span,
        progression=prog,
        bars_per_chord=bars_per_chord,
        scale_notes=scale_notes,
        dur_vals=dur_vals,
        dur_p=dur_p,
        legato=rng.uniform(0.2, 0.55),
        phrase_beats=phrase_beats,
        instruments=instruments,
        drums=drums,
        lead=lead,
        reverb=(rng.uniform(0.4, 1.6), rng.uniform(0.08, 0.3)),
        voice_room=(
            rng.uniform(0.25, 0.8),
            rng.uniform(0.02, 0.15),
            rng.uniform(0.12, 0.26),
            rng.uniform(0.0, 0.2) if rng.random() < 0.35 else 0.0,
        ),
        kit_seed=int(rng.integers(2**31)),
    )


def _pad_settings(rng: np.random.Generator, bpm: float, bpb: int) -> dict:
    """Sustained, filtered, detuned chords."""
    return dict(
        gain=10 ** (rng.uniform(-7, -1) / 20),
        centre=int(rng.integers(55, 65)),
        cutoff=rng.uniform(700, 2500),
        detune=rng.uniform(4, 10),
        attack=rng.uniform(0.15, 0.6),
        release=rng.uniform(0.3, 0.8),
        notes=int(rng.integers(3, 5)),
    )


def _organ_settings(rng: np.random.Generator, bpm: float, bpb: int) -> dict:
    """Drawbar organ: held chords or, a third of the time, short stabs."""
    bars = {
        1: 1.0,
        2: rng.uniform(0.3, 1.0),
        3: rng.uniform(0.0, 0.6),
        4: rng.uniform(0.0, 0.4),
        6: rng.uniform(0.0, 0.25),
        8: rng.uniform(0.0, 0.25),
    }
    stabs = rng.random() < 0.35
    return dict(
        gain=10 ** (rng.uniform(-8, -2) / 20),
        centre=int(rng.integers(52, 64)),
        drawbars=bars,
        stabs=stabs,
        trem_rate=rng.uniform(5.5, 7.0),
        trem_depth=rng.uniform(0.0, 0.3),
        notes=int(rng.integers(3, 5)),
    )


def _strings_settings(rng: np.random.Generator, bpm: float, bpb: int) -> dict:
    """A string section: slow attack, vibrato, three-note chords."""
    return dict(
        gain=10 ** (rng.uniform(-8, -2) / 20),
        centre=int(rng.integers(60, 71)),
        cutoff=rng.uniform(1800, 3500),
        vib_rate=rng.uniform(4.8, 6.2),
        vib_depth=rng.uniform(0.06, 0.16),
        attack=rng.uniform(0.2, 0.5),
        release=rng.uniform(0.3, 0.7),
        notes=3,
    )


def _piano_settings(rng: np.random.Generator, bpm: float, bpb: int) -> dict:
    """Struck chords in one of a few rhythms: (16th step, length in steps) per chord."""
    pats = [
        [(0, 4), (4, 4), (8, 4), (12, 4)],
        [(0, 8), (8, 8)],
        [(2, 2), (6, 2), (10, 2), (14, 2)],
        [(0, 6), (6, 4), (10, 6)],
        [(0, 3), (3, 3), (6, 2), (8, 4), (12, 4)],
    ]
    pat = pats[int(rng.integers(len(pats)))] if bpb == 4 else [(0, 4), (4, 4), (8, 4)]
    return dict(
        gain=10 ** (rng.uniform(-5, 0) / 20),
        centre=int(rng.integers(58, 67)),
        pattern=pat,
        tilt=rng.uniform(0.9, 1.4),
        decay=rng.uniform(0.7, 2.0),
        bright_decay=rng.uniform(0.15, 0.4),
        hammer=rng.uniform(0.08, 0.16),
        notes=4,
    )


def _guitar_settings(rng: np.random.Generator, bpm: float, bpb: int) -> dict:
    """Strummed plucked strings on a strumming pattern (16th steps) that fits the metre."""
    if bpb == 4:
        pats = [
            [0, 4, 8, 12],
            [0, 4, 6, 10, 12, 14],
            [0, 2, 4, 6, 8, 10, 12, 14],
            [0, 6, 8, 14],
            [0, 3, 6, 8, 10, 12, 14],
        ]
    else:
        pats = [[0, 4, 8], [0, 4, 6, 8, 10]]
    return dict(
        gain=10 ** (rng.uniform(-6, 0) / 20),
        pattern=pats[int(rng.integers(len(pats)))],
        pluck=rng.uniform(0.1, 0.25),
        decay=rng.uniform(0.35, 1.0),
        bright_decay=rng.uniform(0.08, 0.25),
        spread=rng.uniform(0.006, 0.016),
        low=int(rng.integers(40, 47)),
    )


def _arp_settings(rng: np.random.Generator, bpm: float, bpb: int) -> dict:
    """Plucked chord tones one at a time; only 8ths at fast tempi."""
    return dict(
        gain=10 ** (rng.uniform(-9, -3) / 20),
        low=int(rng.integers(57, 67)),
        step=2 if bpm > 95 else int(rng.choice([1, 2])),
        pluck=rng.uniform(0.15, 0.4),
        decay=rng.uniform(0.25, 0.6),
        bright_decay=rng.uniform(0.05, 0.2),
        updown=bool(rng.random() < 0.5),
    )


def _bass_settings(rng: np.random.Generator, bpm: float, bpb: int) -> dict:
    """A bass line pattern: (16th step, length in steps, semitones above the root)."""
    if bpb == 4:
        pats = [
            [(0, 16, 0)],
            [(0, 8, 0), (8, 8, 7)],
            [(0, 4, 0), (4, 4, 0), (8, 4, 7), (12, 4, 0)],
            [(s, 2, 0) for s in range(0, 16, 2)],
            [(0, 6, 0), (6, 2, 0), (8, 4, 7), (12, 2, 12), (14, 2, 7)],
            [(0, 3, 0), (3, 5, 0), (8, 3, 0), (11, 5, 7)],
        ]
    else:
        pats = [[(0, 8, 0), (8, 4, 7)], [(0, 4, 0), (4, 4, 7), (8, 4, 12)]]
    return dict(
        gain=10 ** (rng.uniform(0, 5) / 20),
        pattern=pats[int(rng.integers(len(pats)))],
        cutoff=rng.uniform(500, 1500),
        decay=rng.uniform(0.3, 1.0),
        low=int(rng.integers(31, 36)),
        tilt=rng.uniform(1.0, 1.6),
    )


_INSTRUMENT_SETTINGS = {
    "pad": _pad_settings,
    "organ": _organ_settings,
    "strings": _strings_settings,
    "piano": _piano_settings,
    "guitar": _guitar_settings,
    "arp": _arp_settings,
    "bass": _bass_settings,
}


def _make_instrument(rng: np.random.Generator, kind: str, bpm: float, bpb: int) -> dict:
    """One accompaniment part: its wavetable phases, then the kind's own random settings.

    The phases are drawn before the settings and the keys keep this order, so the draws
    (and the corpus) do not depend on how the settings are organised.
    """
    inst = dict(kind=kind, phases=rng.uniform(0, 2 * np.pi, TABLE // 2))
    inst.update(_INSTRUMENT_SETTINGS[kind](rng, bpm, bpb))
    inst["steps"] = 4 * bpb
    return inst


def _make_drums(rng: np.random.Generator, bpb: int) -> dict:
    if bpb == 4:
        pats = {
            "rock": dict(kick=[0, 8], snare=[4, 12], hat=list(range(0, 16, 2))),
            "pop16": dict(kick=[0, 6, 8], snare=[4, 12], hat=list(range(16))),
            "halftime": dict(kick=[0, 10], snare=[8], hat=list(range(0, 16, 2))),
            "ballad": dict(kick=[0, 10], snare=[8], hat=[0, 4, 8, 12]),
            "disco": dict(
                kick=[0, 4, 8, 12], snare=[4, 12], hat=[0, 4, 8, 12], openhat=[2, 6, 10, 14]
            ),
            "funk": dict(kick=[0, 3, 10], snare=[4, 12, 15], hat=list(range(16))),
        }
    else:
        pats = {
            "waltz": dict(kick=[0], snare=[4, 8], hat=list(range(0, 12, 2))),
            "waltz2": dict(kick=[0, 6], snare=[8], hat=list(range(12))),
        }
    name = str(rng.choice(sorted(pats)))
    return dict(
        style=name,
        pattern=pats[name],
        gains=dict(
            kick=10 ** (rng.uniform(-1, 3) / 20),
            snare=10 ** (rng.uniform(-5, 0) / 20),
            hat=10 ** (rng.uniform(-13, -7) / 20),
            openhat=10 ** (rng.uniform(-14, -9) / 20),
            crash=10 ** (rng.uniform(-16, -10) / 20),
        ),
        fill_p=rng.uniform(0.0, 0.6),
        crash_p=rng.uniform(0.2, 0.9),
    )


def _drum_kit(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    kit = {}
    n = int(0.45 * SR)
    t = np.arange(n) / SR
    f_hi, f_lo = rng.uniform(130, 200), rng.uniform(42, 62)
    f = f_lo + (f_hi - f_lo) * np.exp(-t / rng.uniform(0.02, 0.05))
    kick = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / rng.uniform(0.12, 0.3))
    kick += 0.3 * _shaped_noise(rng, n, 2500, 1.0) * np.exp(-t / 0.003)
    kit["kick"] = kick / np.abs(kick).max()
    n = int(0.35 * SR)
    t = np.arange(n) / SR
    body = rng.uniform(170, 230)
    tone = np.sin(2 * np.pi * body * t) * np.exp(-t / 0.04) + 0.5 * np.sin(
        2 * np.pi * body * 1.7 * t
    ) * np.exp(-t / 0.03)
    noise = _shaped_noise(rng, n, rng.uniform(2000, 4500), rng.uniform(0.9, 1.5)) * np.exp(
        -t / rng.uniform(0.08, 0.18)
    )
    snare = rng.uniform(0.3, 0.8) * tone + noise
    kit["snare"] = snare / np.abs(snare).max()
    n = int(0.12 * SR)
    t = np.arange(n) / SR
    hat = _shaped_noise(rng, n, rng.uniform(6000, 7500), 0.6, floor=0.05) * np.exp(
        -t / rng.uniform(0.02, 0.045)
    )
    kit["hat"] = hat / np.abs(hat).max()
    n = int(0.6 * SR)
    t = np.arange(n) / SR
    oh = _shaped_noise(rng, n, rng.uniform(5500, 7000), 0.7, floor=0.05) * np.exp(
        -t / rng.uniform(0.15, 0.3)
    )
    kit["openhat"] = oh / np.abs(oh).max()
    n = int(2.0 * SR)
    t = np.arange(n) / SR
    crash = _shaped_noise(rng, n, rng.uniform(4000, 6000), 1.0, floor=0.02) * np.exp(
        -t / rng.uniform(0.6, 1.1)
    )
    kit["crash"] = crash / np.abs(crash).max()
    return kit


# ----------------------------------------------------------------------------- clips


@dataclass
class ClipSpec:
    name: str
    singer: str
    singer_index: int
    song: str
    clip: int  # 1-based
    t0: float  # song time of the clip's start (s)
    seconds: float


def clip_windows(
    seed: int, singer: str, song: str, n: int, min_seconds: float, max_seconds: float
) -> list[tuple[float, float]]:
    """(start in the song, duration) of the song's first ``n`` clips: consecutive excerpts.

    Draw k depends only on (seed, singer, song, k), not on ``n``.
    """
    rng = _rng(seed, "timeline", singer, song)
    t = rng.uniform(4.0, 12.0)
    out = []
    for _ in range(n):
        dur = rng.uniform(min_seconds, max_seconds)
        gap = rng.uniform(0.5, 8.0)
        out.append((float(t), float(dur)))
        t += dur + gap
    return out


def corpus_layout(
    seed: int, singers: int, songs: int, clips: int, min_seconds: float, max_seconds: float
) -> list[ClipSpec]:
    width = max(2, len(str(clips)))
    specs = []
    for si, singer in enumerate(singer_names(singers)):
        for song in range(1, songs + 1):
            for k, (t0, dur) in enumerate(
                clip_windows(seed, singer, str(song), clips, min_seconds, max_seconds), 1
            ):
                name = f"{singer}_{song}_{k:0{width}d}"
                specs.append(ClipSpec(name, singer, si, str(song), k, t0, dur))
    return specs


def _voice_span(rng: np.random.Generator, dur: float) -> tuple[float, float, tuple | None, str]:
    """When the voice sings in a clip, and the instrumental passage (if any) it leaves free.

    A third of the clips of 4 s or more get an intro, an outro or (from 7.5 s) an interlude
    without voice, as real karaoke clips do.
    """
    voice_from, voice_to = (
        rng.uniform(0.05, min(0.8, 0.15 * dur)),
        dur - rng.uniform(0.0, min(0.4, 0.1 * dur)),
    )
    hole = None
    passage = "none"
    r = rng.random()
    if r < 0.33 and dur >= 4.0:
        passage = str(
            rng.choice(["intro", "outro", "interlude"] if dur >= 7.5 else ["intro", "outro"])
        )
        length = rng.uniform(1.5, min(4.0, 0.45 * dur))
        if passage == "intro":
            voice_from = length
        elif passage == "outro":
            voice_to = dur - length
        else:
            c = rng.uniform(0.35, 0.65) * dur
            hole = (c - length / 2, c + length / 2)
    return voice_from, voice_to, hole, passage


_MELODY_STEPS = np.arange(-4, 5)
_MELODY_STEP_P = np.array([0.03, 0.05, 0.15, 0.22, 0.1, 0.22, 0.15, 0.05, 0.03])


def _next_pitch(song: Song, rng: np.random.Generator, idx: int, pb: float, first: bool) -> int:
    """The next note's index in the key's notes: a random walk pulled to the register's
    centre and reflected at its ends, snapped to a chord tone on strong beats (and at a
    phrase's start) most of the time."""
    sn, steps = song.scale_notes, _MELODY_STEPS
    p = _MELODY_STEP_P * np.exp(-0.25 * steps * (idx - (len(sn) - 1) / 2) / max(len(sn) / 4, 1))
    idx += int(rng.choice(steps, p=p / p.sum()))
    if idx < 0:  # reflect at the ends of the register
        idx = -idx
    if idx > len(sn) - 1:
        idx = 2 * (len(sn) - 1) - idx
    idx = int(np.clip(idx, 0, len(sn) - 1))
    bar = int(math.floor(pb / song.bpb))
    in_bar = pb - bar * song.bpb
    strong = in_bar in ((0.0, 2.0) if song.bpb == 4 else (0.0,))
    if (strong or first) and rng.random() < 0.7:
        pcs = song.chord(bar)[1]
        cand = np.flatnonzero(np.isin(sn % 12, pcs))
        if len(cand):
            idx = int(cand[np.argmin(np.abs(cand - idx) + 0.1 * rng.random(len(cand)))])
    return idx


def _phrases(
    song: Song,
    singer: Singer,
    rng: np.random.Generator,
    t0: float,
    span: tuple[float, float, tuple | None],
) -> tuple[list[dict], int]:
    """The sung notes (onset in clip seconds, length in beats), phrase by phrase with
    breaths between, skipping the instrumental hole; and the last pitch index."""
    voice_from, voice_to, hole = span
    beat, sn, notes = song.beat, song.scale_notes, []
    idx = int(rng.integers(len(sn) // 4, 3 * len(sn) // 4 + 1))
    b = math.ceil((t0 + voice_from) / beat * 2) / 2  # song beat, on the 8th-note grid
    end_b = (t0 + voice_to) / beat
    while b < end_b - 0.5:
        if hole is not None and (b * beat - t0) < hole[1] and (b * beat - t0) > hole[0] - 1.0:
            b = math.ceil((t0 + hole[1]) / beat * 2) / 2
            continue
        phrase = float(rng.choice(song.phrase_beats))
        pb, first = b, True
        while pb < b + phrase and pb < end_b - 0.25:
            on = pb * beat - t0
            if hole is not None and hole[0] <= on + 0.2 and on < hole[1]:
                break
            d = float(rng.choice(song.dur_vals, p=song.dur_p))
            d = min(d, b + phrase - pb + 0.5)
            idx = _next_pitch(song, rng, idx, pb, first)
            notes.append(
                dict(
                    on=on,
                    beats=d,
                    midi=float(sn[idx]) + rng.normal(0, singer.sloppiness),
                    vel=rng.uniform(0.75, 1.0),
                    phrase_start=first,
                )
            )
            first = False
            pb += d
        if notes:
            notes[-1]["beats"] += float(rng.choice([0.0, 0.5, 1.0]))  # phrase-final notes are held
        rest = max(0.5, round(rng.uniform(0.15, 1.0) / beat * 2) / 2)  # a breath: 0.2-1 s
        b = math.ceil((pb + rest) * 2) / 2
    return notes, idx


def _note_ends(
    notes: list[dict], song: Song, rng: np.random.Generator, end_limit: float, hole
) -> None:
    """Each note's legato flag and its end (``off``, s): it never overlaps the next note
    or the instrumental hole, nor runs past ``end_limit``."""
    for i, nt in enumerate(notes):
        nxt = notes[i + 1] if i + 1 < len(notes) else None
        end = nt["on"] + nt["beats"] * song.beat
        nt["legato_out"] = bool(
            nxt is not None
            and not nxt["phrase_start"]
            and nxt["on"] - end < 1e-6
            and rng.random() < song.legato
        )
        if nxt is not None:
            end = min(end, nxt["on"])
        if hole is not None and nt["on"] < hole[0]:
            end = min(end, hole[0])  # the instrumental passage stays free of voice
        nt["off"] = min(end, end_limit)


def _lyrics(notes: list[dict], rng: np.random.Generator) -> None:
    """A syllable (consonant, vowel, optional diphthong glide) per note; a legato note
    sometimes continues the previous syllable (melisma) and never opens unvoiced."""
    for i, nt in enumerate(notes):
        lin = i > 0 and notes[i - 1]["legato_out"]
        nt["legato_in"] = lin
        if lin and rng.random() < 0.35:  # melisma: same syllable
            nt["cons"], nt["vowel"], nt["vowel2"] = (
                "",
                notes[i - 1]["vowel2"] or notes[i - 1]["vowel"],
                None,
            )
        else:
            cons = str(rng.choice(CONS_LIST, p=CONS_P))
            if lin and cons in UNVOICED_CONS:
                cons = str(rng.choice(["", "m", "n", "l"]))
            nt["cons"] = cons
            nt["vowel"] = str(rng.choice(VOWEL_LIST, p=VOWEL_P))
            nt["vowel2"] = str(rng.choice(["i", "u", "@"])) if rng.random() < 0.12 else None
        nt["cons_dur"] = (
            rng.uniform(*UNVOICED_CONS[nt["cons"]][3])
            if nt["cons"] in UNVOICED_CONS
            else rng.uniform(0.04, 0.08)
        )


def _release_gaps(notes: list[dict], rng: np.random.Generator) -> None:
    """Shorten non-legato notes so the next consonant has room (and the note a release);
    every note keeps at least 60 ms."""
    for i, nt in enumerate(notes):
        if not nt["legato_out"] and i + 1 < len(notes):
            nxt = notes[i + 1]
            gap = max(
                rng.uniform(0.03, 0.09),
                0.8 * nxt["cons_dur"] if nxt["cons"] in UNVOICED_CONS else 0.0,
            )
            nt["off"] = min(nt["off"], nxt["on"] - gap)
        nt["off"] = max(nt["off"], nt["on"] + 0.06)


def _melody(
    song: Song, singer: Singer, rng: np.random.Generator, t0: float, dur: float
) -> tuple[list[dict], dict]:
    """The voice's notes of one clip (clip time in seconds) and the instrumental passage.

    The steps draw from ``rng`` in a fixed order; reordering them would change the corpus.
    """
    voice_from, voice_to, hole, passage = _voice_span(rng, dur)
    notes, idx = _phrases(song, singer, rng, t0, (voice_from, voice_to, hole))
    if not notes:  # a very short clip: one held note
        notes.append(
            dict(
                on=voice_from,
                beats=(voice_to - voice_from) / song.beat,
                midi=float(song.scale_notes[idx]),
                vel=0.9,
                phrase_start=True,
            )
        )
    _note_ends(notes, song, rng, voice_to if passage == "outro" else dur - 0.01, hole)
    _lyrics(notes, rng)
    _release_gaps(notes, rng)
    return notes, dict(passage=passage, hole=hole, voice_from=voice_from, voice_to=voice_to)


def _formant_env(f: np.ndarray, F: np.ndarray, B: np.ndarray, singer: Singer) -> np.ndarray:
    """Cascade of second-order resonances (unity gain at DC) at frequencies ``f (S, H)``.

    Plus the singer's formant and a gentle roll-off above 6.5 kHz: the vowel's spectral
    envelope that the harmonics are sampled from.
    """
    g = np.ones_like(f)
    for k in range(F.shape[1]):
        Fk, Bk = F[:, k : k + 1], B[:, k : k + 1]
        g *= Fk**2 / np.sqrt((Fk**2 - f**2) ** 2 + (f * Bk) ** 2)
    g *= 1.0 + singer.sformant / np.sqrt(1.0 + ((f - singer.sformant_hz) / 250.0) ** 2)
    return g / (1.0 + (f / 6500.0) ** 4)


def _frame(t: float, frames: int) -> int:
    """Control-rate frame of time ``t`` (s), clipped to ``0..frames``."""
    return int(np.clip(round(t * SR / HOP), 0, frames))


def _render_voice(
    singer: Singer, song: Song, notes: list[dict], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """The dry-then-roomed voice of one clip and its f0 range / voiced fraction.

    The stages run in a fixed order on one generator (pitch, loudness, vowels, audio,
    consonants, room), so the corpus stays byte-identical for a given seed.
    """
    voice = np.zeros(n)
    if not notes:
        return voice, dict(f0_min=None, f0_max=None, voiced=0.0)
    C = n // HOP + 2
    f0_c, vib = _pitch_contour(singer, notes, C, rng)
    amp = _amplitude(singer, notes, C, vib, rng)
    tabs, seg_t = _formant_tables(singer, notes, rng)
    xp, fp = _segment_ramps(seg_t)
    voice, amp_n = _voiced_audio(f0_c, amp, tabs, xp, fp, n)
    # aspiration noise follows the phonation
    voice += singer.breath * _shaped_noise(rng, n, 2500, 1.2, floor=0.05) * amp_n
    _add_consonants(voice, singer, notes, rng)
    voice = _voice_room(voice, song, rng)
    voiced = amp > 0.05 * amp.max()
    f0v = f0_c[voiced]
    return voice, dict(
        f0_min=round(float(f0v.min()), 1) if len(f0v) else None,
        f0_max=round(float(f0v.max()), 1) if len(f0v) else None,
        voiced=round(float(voiced.mean()), 3),
    )


def _pitch_contour(
    singer: Singer, notes: list[dict], C: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz) over ``C`` control frames and the vibrato (semitones) that also drives tremolo.

    Note targets with scoops and falls, smoothed by the singer's portamento, plus delayed
    vibrato, slow drift and jitter: a sung line rather than a step function.
    """
    tc = np.arange(C) * HOP / SR
    target = np.empty(C)
    ons = [_frame(nt["on"], C) for nt in notes] + [C]
    target[: ons[0]] = notes[0]["midi"]
    vib_amt = np.zeros(C)
    for i, nt in enumerate(notes):
        a, b = ons[i], ons[i + 1]
        target[a:b] = nt["midi"]
        if not nt["legato_in"] and rng.random() < singer.scoop_p:
            k = _frame(rng.uniform(0.04, 0.1), C)
            target[a : min(a + k, b)] -= singer.scoop * rng.uniform(0.3, 1.0)
        if not nt["legato_out"] and rng.random() < singer.fall_p:
            e = _frame(nt["off"], C)
            k = _frame(rng.uniform(0.05, 0.12), C)
            target[max(a, e - k) : min(e + 2, b)] -= rng.uniform(0.7, 2.5)
        if nt["off"] - nt["on"] > 0.3:
            ramp = np.clip((tc[a:b] - nt["on"] - singer.vib_delay) / 0.3, 0, 1)
            vib_amt[a:b] = singer.vib_depth * rng.uniform(0.5, 1.3) * ramp
    tau = singer.porta * SR / HOP
    contour = _onepole(_onepole(target, tau), tau)
    vib_amt = _onepole(vib_amt, 0.06 * SR / HOP)
    rate = singer.vib_rate * (1 + 0.05 * _smooth_noise(rng, C, 0.5 * SR / HOP))
    vphase = 2 * np.pi * np.cumsum(rate) * HOP / SR + rng.uniform(0, 2 * np.pi)
    vib = vib_amt * np.sin(vphase)
    midi_c = (
        contour
        + vib
        + singer.drift * _smooth_noise(rng, C, 0.3 * SR / HOP)
        + 0.02 * _smooth_noise(rng, C, 2.0)
    )
    return midi_hz(midi_c), vib


def _amplitude(
    singer: Singer, notes: list[dict], C: int, vib: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Loudness over ``C`` control frames: per-note attack/release, shimmer and tremolo.

    Legato joins skip the attack/release, so melismas stay connected as in real singing.
    """
    amp = np.zeros(C)
    att, rel = max(2, _frame(singer.attack, C)), max(2, _frame(singer.release, C))
    for nt in notes:
        a, b = _frame(nt["on"], C), _frame(nt["off"], C)
        L = b - a
        if L < 2:
            continue
        e = np.full(L, nt["vel"]) * np.linspace(1.0, 1.0 - rng.uniform(-0.1, 0.25), L)
        if not nt["legato_in"]:
            k = min(att, L // 2)
            e[:k] *= _smoothstep(k)
        if not nt["legato_out"]:
            k = min(rel, L // 2)
            e[L - k :] *= _smoothstep(k, up=False)
        amp[a:b] = np.maximum(amp[a:b], e)
    win = np.hanning(7)
    amp = np.convolve(amp, win / win.sum(), mode="same")
    amp *= 1.0 + 0.12 * _smooth_noise(rng, C, 0.7 * SR / HOP)
    amp *= 1.0 + 0.25 * vib  # tremolo locked to the vibrato
    return np.maximum(amp, 0.0)


def _formant_tables(
    singer: Singer, notes: list[dict], rng: np.random.Generator
) -> tuple[np.ndarray, list[float]]:
    """One wavetable per formant segment (voiced consonant, vowel, diphthong end) and its start.

    Each table is band-limited for the highest f0 its segment reaches (note, previous note,
    vibrato), so pitch changes inside the segment never alias above ``F_MAX``.
    """
    seg_t, seg_F, seg_lvl, seg_f0 = [], [], [], []
    prev_midi = notes[0]["midi"]
    for nt in notes:
        f0_hi = float(midi_hz(max(nt["midi"], prev_midi) + 1.0 + singer.vib_depth))
        prev_midi = nt["midi"]
        pitch = (nt["midi"], f0_hi)
        t = nt["on"]
        if nt["cons"] in VOICED_CONS:
            F, lvl = VOICED_CONS[nt["cons"]]
            seg_t.append(t)
            seg_F.append(F)
            seg_lvl.append(lvl)
            seg_f0.append(pitch)
            t = nt["on"] + min(nt["cons_dur"], 0.35 * (nt["off"] - nt["on"]))
        F, lvl = VOWELS[nt["vowel"]]
        seg_t.append(t)
        seg_F.append(F)
        seg_lvl.append(lvl)
        seg_f0.append(pitch)
        if nt["vowel2"]:
            F, lvl = VOWELS[nt["vowel2"]]
            seg_t.append(nt["on"] + rng.uniform(0.55, 0.75) * (nt["off"] - nt["on"]))
            seg_F.append(F)
            seg_lvl.append(lvl)
            seg_f0.append(pitch)
    S = len(seg_t)
    F = np.array(seg_F, dtype=np.float64) * singer.fshift * (1 + 0.03 * rng.standard_normal((S, 4)))
    B = BANDWIDTHS[None, :] * singer.bw * rng.uniform(0.9, 1.1, (S, 4))
    f0s = midi_hz([m for m, _ in seg_f0])
    H = max(len(_harmonics(hi)) for _, hi in seg_f0)
    h = np.arange(1, H + 1, dtype=np.float64)
    limit = np.array([len(_harmonics(hi)) for _, hi in seg_f0])
    freqs = h[None, :] * f0s[:, None]
    amps = (
        h[None, :] ** -singer.tilt
        * _formant_env(freqs, F, B, singer)
        * (h[None, :] <= limit[:, None])
    )
    amps *= (np.array(seg_lvl) / np.sqrt(0.5 * np.sum(amps**2, axis=1)))[:, None]
    return _tables(amps, singer.phases), seg_t  # (S, TABLE + 1)


def _segment_ramps(seg_t: list[float]) -> tuple[list[float], list[float]]:
    """Breakpoints (time, segment position) for ``np.interp``: integer ``i`` inside segment
    ``i``, linear ramps of at most 30 ms across boundaries (formant transitions)."""
    S = len(seg_t)
    st = np.array(seg_t, dtype=np.float64)
    for i in range(1, S):  # strictly increasing boundaries
        st[i] = max(st[i], st[i - 1] + 0.004)
    xp, fp = [0.0], [0.0]
    for i in range(1, S):
        w = min(
            0.03, 0.45 * (st[i] - st[i - 1]), 0.45 * ((st[i + 1] if i + 1 < S else 1e9) - st[i])
        )
        w = max(w, 1e-4)
        if st[i] - w <= xp[-1]:
            w = max((st[i] - xp[-1]) * 0.5, 1e-6)
        xp += [st[i] - w, st[i] + w]
        fp += [i - 1, i]
    return xp, fp


def _voiced_audio(
    f0_c: np.ndarray,
    amp: np.ndarray,
    tabs: np.ndarray,
    xp: list[float],
    fp: list[float],
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The phonation at audio rate and the loudness there (which the aspiration follows).

    One running phase reads two neighbouring segments' wavetables and crossfades them, so
    the timbre moves between vowels without phase jumps.
    """
    S = tabs.shape[0]
    C = len(f0_c)
    t_n = np.arange(n)
    f0 = np.interp(t_n, np.arange(C) * HOP, f0_c)
    phase = np.cumsum(f0) / SR
    pos = np.interp(t_n / SR, xp, fp)
    i0 = np.minimum(pos.astype(np.int64), S - 1)
    w = pos - i0
    i1 = np.minimum(i0 + 1, S - 1)
    idx = (phase - np.floor(phase)) * TABLE
    j = idx.astype(np.int64)
    fj = idx - j
    flat = tabs.ravel()
    row0, row1 = i0 * (TABLE + 1) + j, i1 * (TABLE + 1) + j
    v0 = flat[row0] + fj * (flat[row0 + 1] - flat[row0])
    v1 = flat[row1] + fj * (flat[row1 + 1] - flat[row1])
    amp_n = np.interp(t_n, np.arange(C) * HOP, amp)
    return (v0 + w * (v1 - v0)) * amp_n, amp_n


def _add_consonants(
    voice: np.ndarray, singer: Singer, notes: list[dict], rng: np.random.Generator
) -> None:
    """Add unvoiced consonants at syllable onsets and inhalations before phrases, in place.

    They put broadband voice energy where no harmonic is, which a separator must also
    attribute to the voice.
    """
    for i, nt in enumerate(notes):
        if nt["cons"] in UNVOICED_CONS:
            kind, centre, width, _, level = UNVOICED_CONS[nt["cons"]]
            d = nt["cons_dur"]
            m = max(8, int(d * SR))
            x = _shaped_noise(
                rng, m, centre * rng.uniform(0.9, 1.1) * (1.05 if singer.female else 1.0), width
            )
            u = np.linspace(0, 1, m)
            if kind == "plos":
                env = np.exp(-u * 4.0) * np.minimum(1.0, u * 40)
                start = nt["on"] - 0.6 * d
            elif kind == "affr":
                env = np.exp(-u * 1.5) * np.minimum(1.0, u * 30)
                start = nt["on"] - 0.85 * d
            else:
                env = np.sin(np.pi * u**0.7) ** 1.5
                start = nt["on"] + 0.012 - d
            _add(voice, int(round(start * SR)), x * env * level * singer.cons_level * nt["vel"])
        gap_before = nt["on"] - (notes[i - 1]["off"] if i else 0.0)
        if nt["phrase_start"] and gap_before > 0.4 and rng.random() < 0.8:
            d = min(0.45, gap_before - 0.15) * rng.uniform(0.6, 1.0)
            m = int(d * SR)
            x = (
                _shaped_noise(rng, m, rng.uniform(1300, 2200), 1.3, floor=0.02)
                * np.sin(np.linspace(0, np.pi, m)) ** 2
            )
            _add(
                voice,
                int(round((nt["on"] - 0.06 - d) * SR)),
                x * singer.breath * rng.uniform(1.0, 3.0),
            )


def _voice_room(voice: np.ndarray, song: Song, rng: np.random.Generator) -> np.ndarray:
    """The singer's room: a short reverb and, in some songs, a karaoke echo (3 repeats)."""
    n = len(voice)
    rt, wet, delay, echo = song.voice_room
    voice = voice + wet * _reverb(rng, voice, rt)
    if echo > 0:
        dly = int(delay * SR)
        out = voice.copy()
        for k in range(1, 4):
            out[k * dly :] += echo**k * voice[: n - k * dly]
        voice = out
    return voice


def _add(buf: np.ndarray, start: int, x: np.ndarray) -> None:
    """buf[start:start+len(x)] += x, clipped to the buffer."""
    lo, hi = max(0, -start), min(len(x), len(buf) - start)
    if hi > lo:
        buf[start + lo : start + hi] += x[lo:hi]


def _reverb(rng: np.random.Generator, x: np.ndarray, rt60: float) -> np.ndarray:
    """Wet signal of a noise reverb: exponential decay, darkening, 10-25 ms pre-delay.

    The impulse response has unit energy, so ``wet`` alone sets the reverb's level.
    """
    m = int(min(rt60, 2.0) * SR)
    t = np.arange(m) / SR
    ir = rng.standard_normal(m) * np.exp(-6.91 * t / rt60)
    ir = signal.lfilter([0.45], [1, -0.55], ir)
    ir[: int(rng.uniform(0.01, 0.025) * SR)] = 0
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    return signal.fftconvolve(x, ir)[: len(x)]


# ----------------------------------------------------------------------------- accompaniment


def _voicing(pcs: tuple, centre: int, count: int) -> list[int]:
    lo = centre - 6
    notes = sorted(lo + (pc - lo) % 12 for pc in pcs)
    k = 0
    while len(notes) < count:  # double chord tones an octave up
        notes.append(notes[k % len(pcs)] + 12)
        k += 1
    return sorted(notes[:count]) if count < len(notes) else sorted(notes)


class _Tones:
    """Renders wavetable notes of the instruments into a buffer (song time ``ts`` at sample 0)."""

    def __init__(self, buf: np.ndarray, ts: float, rng: np.random.Generator):
        self.buf, self.ts, self.rng = buf, ts, rng
        self.cache: dict = {}

    def table(self, key, midi: float, amp_fn, phases: np.ndarray) -> np.ndarray:
        k = (key, round(float(midi), 3))
        if k not in self.cache:
            f0 = float(midi_hz(midi))
            h = _harmonics(f0 * 1.01)
            a = amp_fn(h, f0)
            a = a / np.sqrt(0.5 * np.sum(a**2))
            self.cache[k] = _tables(a, phases)[0]
        return self.cache[k]

    def span(self, t: float, seconds: float) -> tuple[int, np.ndarray] | None:
        """Start sample and the sample indices (relative to the note) that fall in the buffer."""
        start = int(round((t - self.ts) * SR + self.rng.normal(0, 0.003 * SR)))
        m = int(seconds * SR)
        lo, hi = max(0, -start), min(m, len(self.buf) - start)
        if hi <= lo:
            return None
        return start, np.arange(lo, hi)

    def add(
        self,
        t: float,
        seconds: float,
        f0: float,
        tab,
        env_fn,
        tab2=None,
        xfade_fn=None,
        vib_fn=None,
    ) -> None:
        sp = self.span(t, seconds)
        if sp is None:
            return
        start, k = sp
        tt = k / SR
        if vib_fn is None:
            phase = self.rng.random() + f0 * tt
        else:
            phase = self.rng.random() + np.cumsum(f0 * 2.0 ** (vib_fn(tt) / 12.0)) / SR
        x = _lookup(tab, phase)
        if tab2 is not None:
            x += (_lookup(tab2, phase) - x) * xfade_fn(tt)
        self.buf[start + k[0] : start + k[-1] + 1] += env_fn(tt) * x


def _adsr(attack: float, hold: float, release: float):
    def env(t):
        e = np.minimum(1.0, t / max(attack, 1e-3))
        return e * np.where(t > hold, np.exp(-(t - hold) / max(release / 4, 1e-3)), 1.0)

    return env


def _decay(decay: float, hold: float, damp: float = 0.06):
    def env(t):
        e = np.minimum(1.0, t / 0.003) * np.exp(-t / decay)
        return e * np.where(t > hold, np.exp(-(t - hold) / damp), 1.0)

    return env


def _bass_env(t: np.ndarray, decay: float, hold: float) -> np.ndarray:
    e = np.minimum(1.0, t / 0.005) * (0.5 + 0.5 * np.exp(-t / decay))
    return e * np.where(t > hold, np.exp(-(t - hold) / 0.03), 1.0)


def _render_accompaniment(
    song: Song, rng: np.random.Generator, t0: float, n: int, voice_rests: list[tuple[float, float]]
) -> np.ndarray:
    """The accompaniment of one clip: every instrument of the song, the lead, drums, reverb.

    Rendering starts 1.5 s before the clip (then cut), so notes struck earlier ring into
    it as they would in an excerpt of a whole song.
    """
    pre = int(1.5 * SR)
    buf = np.zeros(n + pre)
    ts = t0 - pre / SR
    tones = _Tones(buf, ts, rng)
    bar_len = song.bar
    b_first = max(0, int(math.floor(ts / bar_len)) - 1)
    b_last = int(math.floor((t0 + n / SR) / bar_len))
    bars = range(b_first, b_last + 1)

    for inst in song.instruments:
        kind = inst["kind"]
        if kind in ("pad", "strings") or (kind == "organ" and not inst["stabs"]):
            _render_held_chords(song, tones, inst, bars)
        elif kind == "organ":
            _render_organ_stabs(song, tones, inst, bars)
        elif kind == "piano":
            _render_piano(song, tones, inst, bars)
        elif kind == "guitar":
            _render_guitar(song, tones, inst, bars)
        elif kind == "arp":
            _render_arp(song, tones, inst, bars)
        elif kind == "bass":
            _render_bass(song, tones, inst, bars)

    if song.lead is not None:
        _render_lead(song, tones, t0, n, voice_rests)
    if song.drums is not None:
        _render_drums(song, buf, ts, rng, bars)
    rt, wet = song.reverb
    buf = buf + wet * _reverb(rng, buf, rt)
    return buf[pre:]


def _drawbars(db: dict):
    """Harmonic amplitudes of an organ registration (harmonic number -> level)."""

    def fn(h, f0):
        return np.array([db.get(int(x), 0.0) for x in h]) + 1e-4

    return fn


def _render_held_chords(song: Song, tones: _Tones, inst: dict, bars: range) -> None:
    """Pad, strings or sustained organ: one chord held over each chord's whole span.

    A span that starts before the clip is still struck at its start, so the clip opens on
    a chord already sounding.
    """
    note = {"pad": _pad_note, "strings": _strings_note, "organ": _organ_note}[inst["kind"]]
    bar_len = song.bar
    for sb, length in sorted({song.span_start(b) for b in bars}):
        t, hold = sb * bar_len, length * bar_len
        pcs = song.chord(sb)[1]
        for m in _voicing(pcs, inst["centre"], inst["notes"]):
            note(tones, inst, t, hold, m)


def _pad_note(tones: _Tones, inst: dict, t: float, hold: float, m: int) -> None:
    """A pad note: two low-passed saws detuned apart (the chorus of a synth pad)."""
    g, cut = inst["gain"], inst["cutoff"]

    def fn(h, f0):
        return h**-1.0 / (1 + (h * f0 / cut) ** 4)

    tab = tones.table("pad", m, fn, inst["phases"])
    env = _adsr(inst["attack"], hold, inst["release"])
    for det in (-inst["detune"], inst["detune"]):
        tones.add(
            t,
            hold + inst["release"],
            float(midi_hz(m + det / 100)),
            tab,
            lambda tt: 0.5 * g * env(tt),
        )


def _strings_note(tones: _Tones, inst: dict, t: float, hold: float, m: int) -> None:
    """A string-section note with a body resonance near 1.1 kHz and its own vibrato.

    Vibrato like the voice's makes pitch movement alone useless for telling them apart.
    """
    g, cut, rng = inst["gain"], inst["cutoff"], tones.rng

    def fn(h, f0):
        return (
            h**-1.0
            * (1 + 1.5 * np.exp(-((((h * f0) - 1100) / 500) ** 2)))
            / (1 + (h * f0 / cut) ** 4)
        )

    tab = tones.table("strings", m, fn, inst["phases"])
    env = _adsr(inst["attack"], hold, inst["release"])
    rate, depth, vp = (
        inst["vib_rate"] * rng.uniform(0.95, 1.05),
        inst["vib_depth"],
        rng.uniform(0, 2 * np.pi),
    )
    tones.add(
        t,
        hold + inst["release"],
        float(midi_hz(m)),
        tab,
        lambda tt: g * env(tt),
        vib_fn=lambda tt: depth * np.sin(2 * np.pi * rate * tt + vp),
    )


def _organ_note(tones: _Tones, inst: dict, t: float, hold: float, m: int) -> None:
    """A held organ note: drawbar harmonics with a tremolo."""
    g, tr, td = inst["gain"], inst["trem_rate"], inst["trem_depth"]
    tab = tones.table("organ", m, _drawbars(inst["drawbars"]), inst["phases"])
    env = _adsr(0.01, hold, 0.08)
    tones.add(
        t,
        hold + 0.1,
        float(midi_hz(m)),
        tab,
        lambda tt: g * env(tt) * (1 - td * 0.5 * (1 + np.sin(2 * np.pi * tr * tt))),
    )


def _render_organ_stabs(song: Song, tones: _Tones, inst: dict, bars: range) -> None:
    """Short organ chords on the off-beats (a ska/reggae-style comp)."""
    g, s16 = inst["gain"], song.beat / 4
    fn = _drawbars(inst["drawbars"])
    env = _adsr(0.005, 1.5 * s16, 0.05)
    for b in bars:
        pcs = song.chord(b)[1]
        for step in range(2, inst["steps"], 4):
            t = song.step_time(b, step)
            for m in _voicing(pcs, inst["centre"], inst["notes"]):
                tones.add(
                    t,
                    1.5 * s16 + 0.05,
                    float(midi_hz(m)),
                    tones.table("organ", m, fn, inst["phases"]),
                    lambda tt: 0.8 * g * env(tt),
                )


def _render_piano(song: Song, tones: _Tones, inst: dict, bars: range) -> None:
    """Piano chords in the song's rhythm (bass octave added on the downbeat).

    Each note crossfades from a bright to a dull table and decays faster when higher, so
    the timbre changes over the note like a struck string.
    """
    g, ph, s16, rng = inst["gain"], inst["phases"], song.beat / 4, tones.rng
    tilt, hammer, bd = inst["tilt"], inst["hammer"], inst["bright_decay"]

    def bright(h, f0):
        return h**-tilt * (np.abs(np.sin(np.pi * h * hammer)) + 0.05)

    def dull(h, f0):
        return h**-tilt * (np.abs(np.sin(np.pi * h * hammer)) + 0.05) * np.exp(-h * f0 / 900)

    def xfade(tt):
        return 1 - np.exp(-tt / bd)

    for b in bars:
        root, pcs = song.chord(b)
        for step, dur_steps in inst["pattern"]:
            t, hold = song.step_time(b, step), dur_steps * s16
            vel = rng.uniform(0.7, 1.0)
            chord = _voicing(pcs, inst["centre"], inst["notes"])
            if step == 0:
                chord = chord + [36 + (root - 36) % 12, 48 + (root - 48) % 12]
            for m in chord:
                dec = inst["decay"] * 2.0 ** (-(m - 60) / 24)
                tones.add(
                    t,
                    min(hold + 0.3, 5 * dec),
                    float(midi_hz(m)),
                    tones.table("pianoB", m, bright, ph),
                    lambda tt, e=_decay(dec, hold, 0.08), v=vel: v * g * e(tt),
                    tab2=tones.table("pianoD", m, dull, ph),
                    xfade_fn=xfade,
                )


def _plucked(inst: dict):
    """Bright and dull wavetable spectra of a plucked string and the crossfade between them."""
    pl, bd = inst["pluck"], inst["bright_decay"]

    def bright(h, f0):
        return h**-1.3 * (np.abs(np.sin(np.pi * h * pl)) + 0.03)

    def dull(h, f0):
        return h**-1.3 * (np.abs(np.sin(np.pi * h * pl)) + 0.03) * np.exp(-h * f0 / 700)

    def xfade(tt):
        return 1 - np.exp(-tt / bd)

    return bright, dull, xfade


def _render_guitar(song: Song, tones: _Tones, inst: dict, bars: range) -> None:
    """Strummed guitar: down- and up-strokes across a chord shape, strings slightly apart."""
    g, ph, s16, rng = inst["gain"], inst["phases"], song.beat / 4, tones.rng
    bright, dull, xfade = _plucked(inst)
    low, pat = inst["low"], inst["pattern"]
    for b in bars:
        root, pcs = song.chord(b)
        shape = [low + (root - low) % 12] + _voicing(pcs, low + 16, 4)
        for si, step in enumerate(pat):
            nxt = pat[si + 1] if si + 1 < len(pat) else inst["steps"]
            t, hold = song.step_time(b, step), (nxt - step) * s16
            down = step % 4 == 0 or rng.random() < 0.5
            strings = shape if down else shape[::-1][: rng.integers(3, len(shape) + 1)]
            vel = rng.uniform(0.8, 1.0) * (1.0 if down else 0.7)
            for k, m in enumerate(strings):
                tones.add(
                    t + k * inst["spread"],
                    min(hold + 0.08, 5 * inst["decay"]),
                    float(midi_hz(m)),
                    tones.table("gtrB", m, bright, ph),
                    lambda tt, e=_decay(inst["decay"], hold, 0.04), v=vel: v * g * e(tt),
                    tab2=tones.table("gtrD", m, dull, ph),
                    xfade_fn=xfade,
                )


def _render_arp(song: Song, tones: _Tones, inst: dict, bars: range) -> None:
    """An arpeggio through the chord (up, or up and down) on a plucked timbre."""
    g, ph, s16, rng = inst["gain"], inst["phases"], song.beat / 4, tones.rng
    bright, dull, xfade = _plucked(inst)
    low = inst["low"] + 6
    for b in bars:
        pcs = song.chord(b)[1]
        seq = _voicing(pcs, low, len(pcs)) + [low + 12 + ((pcs[0] - low) % 12)]
        if inst["updown"]:
            seq = seq + seq[-2:0:-1]
        for j, step in enumerate(range(0, inst["steps"], inst["step"])):
            m = seq[(b * inst["steps"] // inst["step"] + j) % len(seq)]
            t, hold = song.step_time(b, step), inst["step"] * s16 * 1.5
            tones.add(
                t,
                min(hold + 0.1, 5 * inst["decay"]),
                float(midi_hz(m)),
                tones.table("arpB", m, bright, ph),
                lambda tt, e=_decay(inst["decay"], hold, 0.05): rng.uniform(0.7, 1.0) * g * e(tt),
                tab2=tones.table("arpD", m, dull, ph),
                xfade_fn=xfade,
            )


def _render_bass(song: Song, tones: _Tones, inst: dict, bars: range) -> None:
    """The bass line: the chord's root (and fifth/octave) in the song's bass pattern."""
    g, ph, s16, rng = inst["gain"], inst["phases"], song.beat / 4, tones.rng
    cut, tilt = inst["cutoff"], inst["tilt"]

    def fn(h, f0):
        return h**-tilt / (1 + (h * f0 / cut) ** 4)

    for b in bars:
        root = song.chord(b)[0]
        base = inst["low"] + (root - inst["low"]) % 12
        for step, dur_steps, iv in inst["pattern"]:
            m = base + iv
            t, hold = song.step_time(b, step), dur_steps * s16 * 0.92
            tones.add(
                t,
                hold + 0.1,
                float(midi_hz(m)),
                tones.table("bass", m, fn, ph),
                lambda tt, d=inst["decay"], hold=hold, v=rng.uniform(0.8, 1.0): (
                    v * g * _bass_env(tt, d, hold)
                ),
            )


def _lead_spectrum(timbre: str):
    """Harmonic amplitudes of the lead instrument: flute, reed (odd harmonics) or synth."""
    if timbre == "flute":
        return lambda h, f0: h**-2.2
    if timbre == "reed":
        return lambda h, f0: h**-0.9 * np.where(h % 2 == 1, 1.0, 0.35) / (1 + (h * f0 / 3000) ** 4)
    return lambda h, f0: h**-1.0 / (1 + (h * f0 / 2200) ** 4)


def _render_lead(
    song: Song, tones: _Tones, t0: float, n: int, voice_rests: list[tuple[float, float]]
) -> None:
    """Fills by a lead instrument in the voice's rests, in the voice's register, with vibrato.

    Melodic, voice-like and only where the voice is silent: a separator must not learn
    "melody in this register = voice".
    """
    lead, rng = song.lead, tones.rng
    timbre = lead["timbre"]
    fn = _lead_spectrum(timbre)
    key = {(song.tonic + s) % 12 for s in (MINOR if song.mode == "minor" else MAJOR)}
    notes = np.array([m for m in range(lead["lo"], lead["hi"] + 1) if m % 12 in key])
    if len(notes) == 0:
        return
    beat = song.beat
    for a, b in voice_rests:
        if b - a < 1.2:
            continue
        idx = int(rng.integers(len(notes)))
        tb = math.ceil((t0 + a + 0.1) / beat * 2) / 2
        while (tb * beat - t0) < b - 0.3:
            d = float(rng.choice([0.5, 1.0, 1.5, 2.0], p=[0.35, 0.35, 0.15, 0.15]))
            idx = int(np.clip(idx + rng.integers(-2, 3), 0, len(notes) - 1))
            bar = int(tb // song.bpb)
            if rng.random() < 0.5:
                cand = np.flatnonzero(np.isin(notes % 12, song.chord(bar)[1]))
                if len(cand):
                    idx = int(cand[np.argmin(np.abs(cand - idx))])
            hold = min(d * beat, b - (tb * beat - t0))
            m = float(notes[idx])
            vp = rng.uniform(0, 2 * np.pi)

            def vib(tt, vp=vp):
                return (
                    lead["vib_depth"]
                    * np.clip((tt - 0.15) / 0.2, 0, 1)
                    * np.sin(2 * np.pi * lead["vib_rate"] * tt + vp)
                )

            tones.add(
                tb * beat,
                hold + 0.12,
                float(midi_hz(m)),
                tones.table("lead" + timbre, m, fn, lead["phases"]),
                lambda tt, e=_adsr(0.04, hold, 0.1), v=rng.uniform(0.75, 1.0): (
                    v * lead["gain"] * e(tt)
                ),
                vib_fn=vib,
            )
            tb += d


def _render_drums(
    song: Song, buf: np.ndarray, ts: float, rng: np.random.Generator, bars: range
) -> None:
    kit = _drum_kit(song.kit_seed)
    dr = song.drums
    pat, gains = dr["pattern"], dr["gains"]
    steps = 4 * song.bpb
    for b in bars:
        hits = [(name, s) for name, ss in pat.items() for s in ss]
        if b % 4 == 3 and rng.random() < dr["fill_p"]:  # a snare fill on the bar's last beat
            hits = [(nm, s) for nm, s in hits if s < steps - 4] + [
                ("snare", s) for s in range(steps - 4, steps)
            ]
        if b % 8 == 0 and rng.random() < dr["crash_p"]:
            hits.append(("crash", 0))
        for name, step in hits:
            t = song.step_time(b, step)
            start = int(round((t - ts) * SR + rng.normal(0, 0.003 * SR)))
            accent = 1.0 if step % 4 == 0 else 0.8
            _add(buf, start, kit[name] * gains[name] * accent * rng.uniform(0.8, 1.0))


# ----------------------------------------------------------------------------- one clip


def render_clip(seed: int, spec: ClipSpec, var_db: float = 5.0) -> tuple[np.ndarray, dict]:
    """Audio ``(2, samples)`` float32 (accompaniment, voice) of one clip and its description."""
    singer = make_singer(seed, spec.singer_index, spec.singer)
    song = make_song(seed, singer, spec.song)
    rng = _rng(seed, "clip", spec.name)
    n = int(round(spec.seconds * SR))
    dur = n / SR
    notes, struct = _melody(song, singer, rng, spec.t0, dur)
    voice, vinfo = _render_voice(singer, song, notes, n, _rng(seed, "voice", spec.name))
    # stretches without voice (for the lead's fills)
    rests, last = [], 0.0
    for nt in notes:
        if nt["on"] - last > 0:
            rests.append((last, nt["on"]))
        last = max(last, nt["off"])
    rests.append((last, dur))
    acc = _render_accompaniment(song, _rng(seed, "accompaniment", spec.name), spec.t0, n, rests)

    var = float(rng.uniform(-var_db, var_db)) if var_db > 0 else 0.0
    rms_a = np.sqrt(np.mean(acc**2)) + 1e-12
    rms_v = np.sqrt(np.mean(voice**2)) + 1e-12
    acc = acc / rms_a
    voice = voice / rms_v * 10 ** (var / 20)
    gain = 10 ** ((-17.5 + rng.uniform(-2.5, 2.5)) / 20)
    peak = max(np.abs(acc).max(), np.abs(voice).max()) * gain
    if peak > 0.9:
        gain *= 0.9 / peak
    audio = (np.stack([acc, voice]) * gain).astype(np.float32)
    info = dict(
        clip=spec.name,
        samples=n,
        seconds=round(dur, 4),
        var_db=round(var, 2),
        passage=struct["passage"],
        notes=len(notes),
        voiced=vinfo["voiced"],
        f0_min=vinfo["f0_min"],
        f0_max=vinfo["f0_max"],
        song_time=round(spec.t0, 3),
    )
    return audio, info


def _write_clip(job: tuple) -> dict:
    seed, spec, var_db, wav_dir = job
    audio, info = render_clip(seed, spec, var_db)
    write_audio(Path(wav_dir) / f"{spec.name}.wav", audio, SR)
    return info


# ----------------------------------------------------------------------------- the corpus


def _params(seed, singers, songs, clips, min_seconds, max_seconds, var_db) -> dict:
    return dict(
        format=FORMAT,
        generator=GENERATOR,
        seed=int(seed),
        singers=int(singers),
        songs=int(songs),
        clips=int(clips),
        min_seconds=float(min_seconds),
        max_seconds=float(max_seconds),
        var_db=float(var_db),
        sr=SR,
    )


def check_arguments(
    seed, singers, songs, clips, min_seconds, max_seconds, var_db=5.0, jobs=1
) -> None:
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise UserError(msg)

    need(
        isinstance(seed, (int, np.integer)) and seed >= 0,
        f"--seed {seed!r}: must be a non-negative integer",
    )
    need(
        singers >= 3,
        f"--singers {singers}: need at least 3 (abjones and amy train, the others test)",
    )
    need(songs >= 1, f"--songs {songs}: need at least 1 song per singer")
    need(clips >= 1, f"--clips {clips}: need at least 1 clip per song")
    need(1.0 <= min_seconds, f"--min-seconds {min_seconds}: clips must last at least 1 s")
    need(
        max_seconds <= 60.0,
        f"--max-seconds {max_seconds}: clips may last at most 60 s (MIR-1K's last 4-13 s)",
    )
    need(
        min_seconds <= max_seconds,
        f"--min-seconds {min_seconds} is above --max-seconds {max_seconds}; give min <= max",
    )
    need(
        0.0 <= var_db <= 20.0,
        f"--var-db {var_db}: give a voice-to-accompaniment spread between 0 and 20 dB",
    )
    need(jobs >= 0, f"--jobs {jobs}: give 0 (all cores) or a positive number of processes")


def _audio_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
    )


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")


def _up_to_date(dest: Path, params: dict, names: list[str]) -> bool:
    info = _read_json(dest / INFO)
    if not info or info.get("params") != params:
        return False
    import soundfile as sf

    expected = {c["clip"]: c["samples"] for c in info.get("clips", [])}
    if sorted(expected) != sorted(names):
        return False
    present = {p.stem: p for p in _audio_files(dest / "Wavfile")}
    if set(present) != set(expected):
        return False
    for name, samples in expected.items():
        try:
            i = sf.info(str(present[name]))
        except Exception:
            return False
        if i.frames != samples or i.samplerate != SR or i.channels != 2:
            return False
    return True


def generate_corpus(
    dest: str | os.PathLike,
    seed: int = 0,
    singers: int = 6,
    songs: int = 3,
    clips: int = 5,
    min_seconds: float = 4.0,
    max_seconds: float = 13.0,
    jobs: int = 1,
    progress: bool = True,
    var_db: float = 5.0,
) -> Path:
    """Write the synthetic corpus to ``dest/Wavfile`` and ``dest/synth.json``; returns ``dest``.

    Idempotent: a complete corpus with the same parameters is left as it is.  Clips this
    command wrote earlier (listed in ``dest/.synth-manifest.json``) are replaced; any other
    audio file in the folder makes it refuse.
    """
    check_arguments(seed, singers, songs, clips, min_seconds, max_seconds, var_db, jobs)
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise UserError(f"--dest {dest}: is a file; give a folder for the corpus")
    wav_dir = dest / "Wavfile"
    params = _params(seed, singers, songs, clips, min_seconds, max_seconds, var_db)
    specs = corpus_layout(seed, singers, songs, clips, min_seconds, max_seconds)
    names = [s.name for s in specs]
    ours, existing = _our_clips(dest, wav_dir)
    if _up_to_date(dest, params, names):
        log.info(
            "%s: synthetic corpus already complete (%d clips), nothing to do", dest, len(names)
        )
        return dest
    _prepare_folder(dest, wav_dir, ours, existing, names)

    t_start = time.perf_counter()
    jobs = jobs or os.cpu_count() or 1
    work = [(int(seed), s, float(var_db), str(wav_dir)) for s in specs]
    infos = _write_clips(work, jobs, progress)
    seconds = time.perf_counter() - t_start

    _write_json(dest / MANIFEST, dict(format=FORMAT, clips=sorted(names)))
    total = sum(i["seconds"] for i in infos.values())
    _write_json(
        dest / INFO,
        dict(
            params=params,
            total_clips=len(infos),
            total_seconds=round(total, 2),
            singers=_singer_table(seed, singers),
            songs=_song_table(seed, singers, songs),
            clips=[infos[k] for k in sorted(infos)],
        ),
    )
    log.info("%s: %d clips, %.1f min of audio in %.1f s", dest, len(infos), total / 60, seconds)
    return dest


def _our_clips(dest: Path, wav_dir: Path) -> tuple[set[str], dict[str, Path]]:
    """The clips an earlier run of this command wrote, and the audio files now in ``wav_dir``.

    Refuses (UserError) when the folder holds audio this command did not write: replacing
    or mixing with e.g. the real MIR-1K would silently corrupt a catalogue.
    """
    for other in (dest / "MIR-1K" / "Wavfile", dest):
        found = _audio_files(other)
        if found:
            raise UserError(
                f"--dest {dest}: {other} already holds {len(found)} audio file(s) "
                f"(e.g. {found[0].name}) that are not part of a synthetic corpus; the "
                "catalogue would mix them up. Choose an empty or new --dest folder."
            )
    manifest = _read_json(dest / MANIFEST) or {}
    ours = set(manifest.get("clips", [])) if manifest.get("format") == FORMAT else set()
    existing = {p.stem: p for p in _audio_files(wav_dir)}
    foreign = sorted(set(existing) - ours)
    if foreign:
        raise UserError(
            f"--dest {dest}: {wav_dir} holds {len(foreign)} audio file(s) not written by "
            f"`hourglass-sep synth` (e.g. {existing[foreign[0]].name}); refusing to mix corpora. "
            "Choose an empty or new --dest folder, or remove those files."
        )
    return ours, existing


def _prepare_folder(
    dest: Path, wav_dir: Path, ours: set[str], existing: dict[str, Path], names: list[str]
) -> None:
    """Mark the corpus incomplete, record the clips about to be written, drop stale ones.

    The manifest lists old and new clips before any audio is written, so a killed run
    leaves nothing a later run would take for foreign audio.
    """
    (dest / INFO).unlink(missing_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    _write_json(dest / MANIFEST, dict(format=FORMAT, clips=sorted(ours | set(names))))
    for stale in sorted(set(existing) - set(names)):
        existing[stale].unlink()
    wav_dir.mkdir(parents=True, exist_ok=True)
    for tmp in wav_dir.glob(".*.part.*"):  # leftovers of a killed run (atomic_path's temporaries)
        tmp.unlink(missing_ok=True)


def _write_clips(work: list[tuple], jobs: int, progress: bool) -> dict[str, dict]:
    """Render and write every clip (in ``jobs`` spawned processes); clip name -> its info.

    Each clip seeds its own generators, so the files do not depend on ``jobs`` or order.
    """
    infos: dict[str, dict] = {}
    bar = tqdm(total=len(work), desc="synth", unit="clip", disable=not progress)
    try:
        if jobs == 1 or len(work) == 1:
            for w in work:
                info = _write_clip(w)
                infos[info["clip"]] = info
                bar.update()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=ctx) as pool:
                futures = [pool.submit(_write_clip, w) for w in work]
                for fut in as_completed(futures):
                    info = fut.result()
                    infos[info["clip"]] = info
                    bar.update()
    finally:
        bar.close()
    return infos


def _song_table(seed: int, singers: int, songs: int) -> dict[str, dict]:
    """``<singer>_<song>`` -> key, tempo, metre, progression, instruments (for synth.json)."""
    table = {}
    for si, name in enumerate(singer_names(singers)):
        sg = make_singer(seed, si, name)
        for song in range(1, songs + 1):
            s = make_song(seed, sg, str(song))
            table[f"{name}_{song}"] = s.describe()
    return table


def _singer_table(seed: int, singers: int) -> dict[str, dict]:
    """Singer -> voice type, split and range in Hz (for synth.json)."""
    table = {}
    for si, name in enumerate(singer_names(singers)):
        sg = make_singer(seed, si, name)
        table[name] = dict(
            voice=sg.kind,
            split="train" if name in TRAIN_SINGERS else "test",
            range_hz=[round(float(midi_hz(sg.lo)), 1), round(float(midi_hz(sg.hi)), 1)],
        )
    return table


# ----------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dest",
        required=True,
        help="corpus folder (clips go to DEST/Wavfile, parameters to DEST/synth.json)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed (same seed and arguments: byte-identical files)",
    )
    p.add_argument(
        "--singers",
        type=int,
        default=6,
        help="number of singers (>= 3; the first two, abjones and amy, are the training split)",
    )
    p.add_argument("--songs", type=int, default=3, help="songs per singer")
    p.add_argument("--clips", type=int, default=5, help="clips per song")
    p.add_argument("--min-seconds", type=float, default=4.0, help="shortest clip")
    p.add_argument("--max-seconds", type=float, default=13.0, help="longest clip")
    p.add_argument(
        "--var-db",
        type=float,
        default=5.0,
        help="voice-to-accompaniment ratio drawn uniformly in +-VAR_DB dB per clip",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes (0 = all cores); the output does not depend on it",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    t = time.perf_counter()
    dest = generate_corpus(
        args.dest,
        seed=args.seed,
        singers=args.singers,
        songs=args.songs,
        clips=args.clips,
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
        jobs=args.jobs,
        progress=not args.no_progress,
        var_db=args.var_db,
    )
    info = _read_json(dest / INFO) or {}
    n_train = sum(1 for c in info.get("clips", []) if c["clip"].split("_")[0] in TRAIN_SINGERS)
    n_test = info.get("total_clips", 0) - n_train
    print(
        f"{dest}: {info.get('total_clips')} clips ({n_train} train, {n_test} test), "
        f"{info.get('total_seconds', 0) / 60:.1f} min of audio, {time.perf_counter() - t:.1f} s"
    )
    return 0
