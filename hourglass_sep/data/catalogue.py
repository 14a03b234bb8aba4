"""Clip catalogue and the MIR-1K split.

MIR-1K names clips ``<singer>_<song>_<clip>`` (e.g. ``abjones_1_01``).  Park and the
seed train on the singers ``abjones`` and ``amy`` (175 clips) and test on the other
825.  The same rule applies to the synthetic corpus, which reuses those singer names.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from hourglass_sep.data.audio import AUDIO_SUFFIXES, atomic_path
from hourglass_sep.errors import UserError

TRAIN_SINGERS = ("abjones", "amy")
MIR1K_TEST_CLIPS = 825  # the full MIR-1K test set (every clip not sung by TRAIN_SINGERS)
CLIP_RE = re.compile(r"^(?P<singer>[A-Za-z0-9]+)_(?P<song>[A-Za-z0-9]+)_(?P<clip>[A-Za-z0-9]+)$")
COLUMNS = ["clip", "singer", "song", "split", "samples", "sr", "path"]


def find_wav_dir(root: str | Path) -> Path:
    """The folder holding the clips: ``root``, ``root/Wavfile`` or ``root/MIR-1K/Wavfile``.

    Users point at whichever level they extracted; the layouts of the zip and of a copy differ.
    """
    root = Path(root)
    for cand in (root / "MIR-1K" / "Wavfile", root / "Wavfile", root):
        if cand.is_dir() and any(p.suffix.lower() in AUDIO_SUFFIXES for p in cand.iterdir()):
            return cand
    raise UserError(
        f"{root}: no MIR-1K clips found (looked in {root}/MIR-1K/Wavfile, {root}/Wavfile and "
        f"{root}); point at the folder holding <singer>_<song>_<clip>.wav files"
    )


def split_of(singer: str) -> str:
    return "train" if singer.lower() in TRAIN_SINGERS else "test"


def build_catalogue(root: str | Path) -> pd.DataFrame:
    """One row per clip: clip, singer, song, split, samples, sr, path (sorted by clip name)."""
    wav_dir = find_wav_dir(root)
    rows = []
    for path in sorted(wav_dir.iterdir()):
        if path.suffix.lower() not in AUDIO_SUFFIXES or path.name.startswith("."):
            continue
        m = CLIP_RE.match(path.stem)
        if not m:
            raise UserError(f"{path}: name is not <singer>_<song>_<clip>; rename or remove it")
        try:
            info = sf.info(str(path))
        except Exception as exc:
            raise UserError(f"{path}: unreadable audio ({exc})") from None
        rows.append(
            dict(
                clip=path.stem,
                singer=m["singer"],
                song=f"{m['singer']}_{m['song']}",
                split=split_of(m["singer"]),
                samples=int(info.frames),
                sr=int(info.samplerate),
                path=str(path.resolve()),
            )
        )
    if not rows:
        raise UserError(f"{wav_dir}: no clips")
    df = pd.DataFrame(rows, columns=COLUMNS)
    dup = df["clip"][df["clip"].duplicated()]
    if len(dup):
        raise UserError(f"{wav_dir}: clip {dup.iloc[0]!r} appears with two extensions; keep one")
    return df.reset_index(drop=True)


def pick_test_subset(df: pd.DataFrame, n: int | None, seed: int = 0) -> pd.DataFrame:
    """A deterministic subset of ``n`` test clips, stratified by singer.

    Each singer gets a share of ``n`` proportional to its number of test clips
    (largest remainders), and its clips are drawn with a fixed seed.  ``n=None``
    or ``n >= number of test clips`` returns all test clips.
    """
    test = df[df["split"] == "test"].sort_values("clip")
    if n is None or n <= 0 or n >= len(test):
        return test.reset_index(drop=True)
    counts = test.groupby("singer").size().sort_index()
    exact = counts / counts.sum() * n
    quota = np.floor(exact).astype(int)
    rest = n - int(quota.sum())
    order = (exact - quota).sort_values(ascending=False, kind="stable").index[:rest]
    quota[order] += 1
    rng = np.random.default_rng(seed)
    picked = []
    for singer, k in quota.items():
        clips = test[test["singer"] == singer]["clip"].to_numpy()
        if k:
            picked.extend(rng.choice(clips, size=int(k), replace=False).tolist())
    return test[test["clip"].isin(picked)].reset_index(drop=True)


def select(
    df: pd.DataFrame, split: str, test_clips: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """The clips of one split (``train``, ``test`` or ``all``).

    For ``test``: the catalogue's ``evaluate`` column when present (the subset chosen
    when the catalogue was written), else a fresh subset of ``test_clips``.
    """
    if split == "train":
        return df[df["split"] == "train"].sort_values("clip").reset_index(drop=True)
    if split == "test":
        if "evaluate" in df.columns and test_clips is None:
            return evaluated_clips(df)
        return pick_test_subset(df, test_clips, seed)
    if split == "all":
        return df.sort_values("clip").reset_index(drop=True)
    raise UserError(f"unknown split {split!r}; choose train, test or all")


def _truthy(column: pd.Series) -> pd.Series:
    """A boolean column as written to TSV (True/False, 1/0, yes/no) -> bool Series."""
    if column.dtype == bool:
        return column
    return column.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


def parse_shard(spec: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``.

    The ``--shard`` option of separate/baseline/score: one job's share of the test clips.
    """
    try:
        i_s, n_s = str(spec).split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise UserError(
            f"--shard {spec!r}: expected I/N, e.g. 0/4 (shard I, 0-based, of N)"
        ) from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {spec!r}: need N >= 1 and 0 <= I < N")
    return i, n


def evaluated_clips(df: pd.DataFrame, shard: tuple[int, int] = (0, 1)) -> pd.DataFrame:
    """The evaluated test clips (split == test and ``evaluate`` true, or every test clip when the
    catalogue has no ``evaluate`` column), sorted by name; clip k of that list belongs to shard
    k % N.  Separation, the mixture baseline and scoring all shard with this one function, so a
    shard's estimates, baseline and scores always cover the same clips."""
    if "evaluate" in df.columns:
        test = df[(df["split"] == "test") & _truthy(df["evaluate"])]
    else:
        test = df[df["split"] == "test"]
    test = test.sort_values("clip", kind="stable").reset_index(drop=True)
    i, n = shard
    return test.iloc[[k for k in range(len(test)) if k % n == i]].reset_index(drop=True)


def read_catalogue(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: catalogue not found; create it with `hourglass-sep catalogue`")
    df = pd.read_csv(path, sep="\t")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path}: not a clip catalogue (missing columns {missing})")
    return df


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", help="MIR-1K-format folder (holding Wavfile/ or the clips themselves)")
    p.add_argument("-o", "--output", required=True, help="catalogue TSV to write (all clips)")
    p.add_argument(
        "--test-clips", type=int, default=None, help="also mark a stratified test subset of N clips"
    )
    p.add_argument("--subset-seed", type=int, default=0, help="seed of the test subset")


def run(args: argparse.Namespace) -> int:
    df = build_catalogue(args.root)
    chosen = set(pick_test_subset(df, args.test_clips, args.subset_seed)["clip"])
    df["evaluate"] = df["clip"].isin(chosen)
    write_table(df, args.output)
    n_train = int((df["split"] == "train").sum())
    n_test = int((df["split"] == "test").sum())
    print(
        f"{args.output}: {len(df)} clips, {n_train} train, {n_test} test, {len(chosen)} evaluated"
    )
    return 0
