"""Scoring: BSS Eval backends vs mir_eval, NSDR, bad clips, CLI round trip, bad inputs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import MIR1K  # noqa: E402  (HOURGLASS_SEP_SHARED or ../shared)

from hourglass_sep.cli import main
from hourglass_sep.data.catalogue import evaluated_clips, parse_shard
from hourglass_sep.errors import UserError
from hourglass_sep.scoring import backends
from hourglass_sep.scoring import score as S
from hourglass_sep.scoring.backends import (
    BACKENDS,
    REGISTRY,
    bss_eval_sources,
    get_backend,
    mixture_scores,
    mixture_scores_from_factors,
)
from hourglass_sep.scoring.clip_io import read_references
from hourglass_sep.scoring.scorers.museval_v4 import load_museval_metrics
from hourglass_sep.scoring.signals import (
    BASELINE_COLUMNS,
    MIX_COLUMNS,
    SCORE_COLUMNS,
    SOURCES,
    ClipError,
)
from hourglass_sep.scoring.workers import _limit_blas_here

TOL = 1e-3  # dB
SR = 16000


def mir_eval_sources(refs, ests):
    import mir_eval.separation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in mir_eval 0.8
        sdr, sir, sar, perm = mir_eval.separation.bss_eval_sources(
            refs, ests, compute_permutation=False
        )
    return {"sdr": sdr, "sir": sir, "sar": sar}


def synth_refs(seed: int, n: int = SR * 3 // 2) -> np.ndarray:
    """(voice, accompaniment) float64: a gliding harmonic tone with a vibrato-ish envelope,
    and chords + noise.  Quantised like a 16-bit file."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    f0 = 220 * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t + seed))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 6)) * (
        0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t) ** 2
    )
    acc = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (110, 138.6, 164.8, 330)) * 0.3
    acc = acc + 0.05 * rng.standard_normal(n)
    refs = np.stack([voice, acc]) * 0.2
    return np.round(refs * 32767) / 32767


def synth_estimates(refs: np.ndarray, seed: int) -> np.ndarray:
    """Leak of the other source + a non-linear artefact + a little noise (not in the span of
    the references, so SAR is finite)."""
    rng = np.random.default_rng(seed + 100)
    v, a = refs
    return np.stack(
        [
            0.9 * v + 0.25 * a + 0.03 * np.tanh(6 * v) + 0.002 * rng.standard_normal(v.size),
            0.85 * a + 0.1 * v + 0.02 * np.tanh(6 * a) + 0.002 * rng.standard_normal(v.size),
        ]
    )


def assert_close(a: dict, b: dict, tol=TOL, keys=("sdr", "sir", "sar")):
    for k in keys:
        np.testing.assert_allclose(
            np.asarray(a[k]).ravel(), np.asarray(b[k]).ravel(), atol=tol, rtol=0, err_msg=k
        )


def museval_v3(refs, ests):
    """museval's own bss_eval_sources wrapper (v3 framewise code path), fixed order."""
    mm = load_museval_metrics()
    sdr, sir, sar, _ = mm.bss_eval_sources(refs, ests, compute_permutation=False)
    return {"sdr": sdr[:, 0], "sir": sir[:, 0], "sar": sar[:, 0]}


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """BSS Eval is slower with several BLAS threads (and the machine may be shared)."""
    with _limit_blas_here():
        yield


# ----------------------------------------------------------------------------- agreement


# the backends that compute BSS Eval v3 "sources" and must agree to the last 1e-3 dB
BSS_EVAL_V3 = tuple(n for n, r in REGISTRY.items() if r.family == "bss_eval_v3")


@pytest.mark.parametrize("seed", [0, 1])
def test_backends_match_mir_eval_generated(seed):
    refs = synth_refs(seed)
    ests = synth_estimates(refs, seed)
    want = mir_eval_sources(refs, ests)
    for backend in BSS_EVAL_V3:
        assert_close(bss_eval_sources(refs, ests, backend), want)
    assert_close(museval_v3(refs, ests), want)


def real_test_clips(k: int = 3):
    if not (MIR1K / "Wavfile").is_dir():
        pytest.skip(f"real MIR-1K clips not found at {MIR1K} (../shared/data/mir1k)")
    from hourglass_sep.data.catalogue import build_catalogue

    cat = build_catalogue(MIR1K)
    test = cat[cat["split"] == "test"].sort_values("samples").head(k)
    return test


@pytest.mark.realdata
def test_backends_match_mir_eval_real_clips():
    for r in real_test_clips(3).itertuples(index=False):
        refs, sr = read_references(r.path)
        assert sr == 16000 and refs.shape == (2, r.samples)
        # the clip's own channels: voice = right, accompaniment = left
        raw, _ = sf.read(r.path, always_2d=True)
        np.testing.assert_array_equal(refs[0], raw[:, 1])
        np.testing.assert_array_equal(refs[1], raw[:, 0])
        ests = synth_estimates(refs, 0)
        want = mir_eval_sources(refs, ests)
        got = {b: bss_eval_sources(refs, ests, b) for b in BSS_EVAL_V3}
        assert_close(got["museval"], want)
        assert_close(got["fast_bss_eval"], want)
        assert_close(got["museval"], got["fast_bss_eval"])
        assert_close(museval_v3(refs, ests), want)
        # the mixture's SDR/SIR (the NSDR baseline) agree too
        mix = np.stack([refs.mean(0)] * 2)
        want_mix = mir_eval_sources(refs, mix)
        for b in BSS_EVAL_V3:
            m = mixture_scores(refs, b)
            for i, s in enumerate(SOURCES):
                assert abs(m[f"{s}_mix_sdr"] - want_mix["sdr"][i]) <= TOL
                assert abs(m[f"{s}_mix_sir"] - want_mix["sir"][i]) <= TOL
                assert (
                    m[f"{s}_mix_sar"] > 100
                )  # +inf in theory: the mixture is a sum of the references


def test_fixed_source_order_no_permutation():
    """Estimate i is scored against reference i even when the swapped order scores better."""
    refs = synth_refs(3)
    ests = synth_estimates(refs, 3)[::-1].copy()  # voice estimate in the accompaniment slot
    want = mir_eval_sources(refs, ests)
    for backend in BACKENDS:
        got = bss_eval_sources(refs, ests, backend)
        if backend in BSS_EVAL_V3:
            assert_close(got, want)
        assert (got["sdr"] < 0).all()  # the wrong pairing, not the best permutation


# ----------------------------------------------------------------------------- NSDR


def test_nsdr_definition_and_baseline_reuse():
    refs = synth_refs(4)
    ests = synth_estimates(refs, 4)
    row = S.score_clip(refs, ests, "fast_bss_eval")
    assert (
        row["status"] == "ok"
        and row["mix_from"] == "recomputed"
        and row["samples"] == refs.shape[1]
    )
    mix = np.stack([refs.mean(0)] * 2)  # the mixture = mean of the two channels
    direct = mir_eval_sources(refs, mix)
    for i, s in enumerate(SOURCES):
        assert abs(row[f"{s}_mix_sdr"] - direct["sdr"][i]) <= TOL
        assert row[f"{s}_nsdr"] == pytest.approx(row[f"{s}_sdr"] - row[f"{s}_mix_sdr"], abs=1e-12)
    # a baseline over the same samples is reused as is; over other samples it is recomputed
    fake = {c: 1.0 for c in MIX_COLUMNS}
    reused = S.score_clip(
        refs, ests, "fast_bss_eval", baseline=fake, baseline_samples=refs.shape[1]
    )
    assert reused["mix_from"] == "baseline"
    assert reused["voice_nsdr"] == pytest.approx(row["voice_sdr"] - 1.0)
    short = ests[:, :-800]
    trunc = S.score_clip(
        refs, short, "fast_bss_eval", baseline=fake, baseline_samples=refs.shape[1]
    )
    assert trunc["mix_from"] == "recomputed" and trunc["samples"] == short.shape[1]
    want = mir_eval_sources(
        refs[:, : short.shape[1]], short
    )  # references truncated to the estimate
    assert abs(trunc["voice_sdr"] - want["sdr"][0]) <= TOL


# ----------------------------------------------------------------------------- bad clips


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda r, e: (r * np.array([[0.0], [1.0]]), e), "silent reference"),
        (lambda r, e: (r, e * np.array([[1.0], [0.0]])), "silent estimate"),
        (lambda r, e: (r, np.where(np.arange(e.shape[1]) == 7, np.nan, e)), "non-finite estimate"),
        (lambda r, e: (r[:, :-100], e), "length mismatch"),  # estimate longer than the reference
        (lambda r, e: (r, e[:, :-4000]), "length mismatch"),  # far too short
        (lambda r, e: (r[:, :100], e[:, :100]), "too short"),
    ],
)
def test_bad_clips_get_a_reason_not_a_crash(make, reason):
    refs, ests = make(synth_refs(5), synth_estimates(synth_refs(5), 5))
    for backend in BACKENDS:
        row = S.score_clip(refs, ests, backend, max_shortfall=1600)
        assert row["status"].startswith(reason), row["status"]
        assert all(
            math.isnan(row[f"{s}_{m}"]) for s in SOURCES for m in ("sdr", "sir", "sar", "nsdr")
        )


def test_silent_raises_clip_error_in_library():
    refs = synth_refs(6)
    with pytest.raises(ClipError, match="silent estimate"):
        bss_eval_sources(refs, np.zeros_like(refs))


# ----------------------------------------------------------------------------- sharding


def test_evaluated_clips_and_shards():
    cat = pd.DataFrame(
        {
            "clip": ["b_1_01", "a_1_01", "abjones_1_01", "c_1_01", "d_1_01", "e_1_02"],
            "singer": ["b", "a", "abjones", "c", "d", "e"],
            "split": ["test", "test", "train", "test", "test", "test"],
            "evaluate": [True, True, False, False, True, True],
        }
    )
    assert evaluated_clips(cat)["clip"].tolist() == ["a_1_01", "b_1_01", "d_1_01", "e_1_02"]
    assert evaluated_clips(cat, (0, 2))["clip"].tolist() == ["a_1_01", "d_1_01"]
    assert evaluated_clips(cat, (1, 2))["clip"].tolist() == ["b_1_01", "e_1_02"]
    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "x", "1/0", "-1/2"):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(bad)


# ----------------------------------------------------------------------------- CLI round trip


def write_corpus(root: Path):
    """5 test clips (one not evaluated), 1 training clip, a catalogue, reference arrays."""
    wav = root / "Wavfile"
    wav.mkdir(parents=True)
    names = ["annar_1_01", "annar_1_02", "bobon_2_01", "heycat_3_01", "titon_1_05", "amy_1_01"]
    lengths = [20000, 24000, 16000, 28000, 18000, 12000]
    rows, refs = [], {}
    for i, (name, n) in enumerate(zip(names, lengths)):
        r = synth_refs(10 + i, n)
        path = wav / f"{name}.wav"
        sf.write(path, np.stack([r[1], r[0]]).T, SR, subtype="PCM_16")  # left = acc, right = voice
        refs[name], _ = read_references(path)
        singer = name.split("_")[0]
        rows.append(
            dict(
                clip=name,
                singer=singer,
                song="_".join(name.split("_")[:2]),
                split="train" if singer == "amy" else "test",
                samples=n,
                sr=SR,
                path=str(path),
                evaluate=singer != "amy" and name != "titon_1_05",
            )
        )
    cat = pd.DataFrame(rows)
    cat.to_csv(root / "catalogue.tsv", sep="\t", index=False)
    return root / "catalogue.tsv", refs


def write_estimates(path: Path, arrays: dict[str, np.ndarray]):
    out = {"clips": np.array(list(arrays))}
    for clip, e in arrays.items():
        out[f"voice__{clip}"] = e[0].astype(np.float32)
        out[f"accompaniment__{clip}"] = e[1].astype(np.float32)
    out["meta"] = np.array(json.dumps({"seconds": 1.0, "device": "cpu"}))
    np.savez(path, **out)


def test_cli_round_trip(tmp_path, capsys):
    cat, refs = write_corpus(tmp_path)
    # baseline in two shards, the first with two worker processes
    assert (
        main(
            [
                "baseline",
                "--catalogue",
                str(cat),
                "--shard",
                "0/2",
                "-o",
                str(tmp_path / "b0.tsv"),
                "--workers",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "baseline",
                "--catalogue",
                str(cat),
                "--shard",
                "1/2",
                "-o",
                str(tmp_path / "b1.tsv"),
                "--backend",
                "fast_bss_eval",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    b0 = pd.read_csv(tmp_path / "b0.tsv", sep="\t")
    b1 = pd.read_csv(tmp_path / "b1.tsv", sep="\t")
    assert b0["clip"].tolist() == ["annar_1_01", "bobon_2_01"] and b1["clip"].tolist() == [
        "annar_1_02",
        "heycat_3_01",
    ]
    assert set(BASELINE_COLUMNS) <= set(b0.columns) and (b0["status"] == "ok").all()

    ests = {c: synth_estimates(refs[c], 1) for c in ("annar_1_01", "annar_1_02", "bobon_2_01")}
    ests["bobon_2_01"][0, 100] = np.nan  # a broken estimate; heycat_3_01 is missing
    write_estimates(tmp_path / "E.npz", ests)
    scores_path = tmp_path / "scores.tsv"
    assert (
        main(
            [
                "score",
                "--catalogue",
                str(cat),
                "--estimates",
                str(tmp_path / "E.npz"),
                "--baseline",
                str(tmp_path / "b0.tsv"),
                str(tmp_path / "b1.tsv"),
                "-o",
                str(scores_path),
                "--variant",
                "tiny",
                "--step",
                "100",
                "--backend",
                "fast_bss_eval",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    sc = pd.read_csv(scores_path, sep="\t")
    assert list(sc.columns) == SCORE_COLUMNS
    sc = sc.set_index("clip")
    assert sc.index.tolist() == ["annar_1_01", "annar_1_02", "bobon_2_01", "heycat_3_01"]
    assert sc.loc["bobon_2_01", "status"].startswith("non-finite estimate")
    assert sc.loc["heycat_3_01", "status"] == "missing from estimates"
    assert sc.loc["heycat_3_01", "samples"] == 28000 and np.isnan(
        sc.loc["heycat_3_01", "voice_nsdr"]
    )
    assert (sc["variant"] == "tiny").all() and (sc["step"] == 100).all()
    ok = sc[sc["status"] == "ok"]
    assert (ok["mix_from"] == "baseline").all()
    # the numbers are mir_eval's (estimates went through float32 in the npz)
    for clip in ok.index:
        e = np.stack([ests[clip][0].astype(np.float32), ests[clip][1].astype(np.float32)]).astype(
            np.float64
        )
        want = mir_eval_sources(refs[clip], e)
        mix = mir_eval_sources(refs[clip], np.stack([refs[clip].mean(0)] * 2))
        for i, s in enumerate(SOURCES):
            assert abs(ok.loc[clip, f"{s}_sdr"] - want["sdr"][i]) <= TOL
            assert abs(ok.loc[clip, f"{s}_sar"] - want["sar"][i]) <= TOL
            assert abs(ok.loc[clip, f"{s}_nsdr"] - (want["sdr"][i] - mix["sdr"][i])) <= TOL

    summary = tmp_path / "summary.tsv"
    assert main(["aggregate", "--scores", str(scores_path), "-o", str(summary)]) == 0
    sm = pd.read_csv(summary, sep="\t")
    assert len(sm) == 1
    r = sm.iloc[0]
    assert (r["variant"], r["step"], r["clips"], r["failed"]) == ("tiny", 100, 2, 2)
    assert r["total_samples"] == 20000 + 24000
    want = (ok["voice_nsdr"] * ok["samples"]).sum() / ok["samples"].sum()
    assert r["voice_gnsdr"] == pytest.approx(want)
    assert r["scorer"].startswith("fast_bss_eval")

    # without --baseline the mixture is scored on the fly (museval): same numbers
    assert (
        main(
            [
                "score",
                "--catalogue",
                str(cat),
                "--estimates",
                str(tmp_path / "E.npz"),
                "-o",
                str(tmp_path / "s2.tsv"),
                "--variant",
                "tiny",
                "--step",
                "100",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    s2 = pd.read_csv(tmp_path / "s2.tsv", sep="\t").set_index("clip")
    assert (s2.loc[ok.index, "mix_from"] == "recomputed").all()
    cols = [
        f"{s}_{m}" for s in SOURCES for m in ("sdr", "sir", "sar", "nsdr", "mix_sdr", "mix_sir")
    ]
    np.testing.assert_allclose(s2.loc[ok.index, cols].to_numpy(), ok[cols].to_numpy(), atol=TOL)


def test_score_length_checks_via_estimates_file(tmp_path):
    cat, refs = write_corpus(tmp_path)
    clips = evaluated_clips(pd.read_csv(cat, sep="\t"))
    ests = {
        "annar_1_01": synth_estimates(refs["annar_1_01"], 2)[:, :-320],  # 20 ms short: fine
        "annar_1_02": synth_estimates(refs["annar_1_02"], 2)[:, :-8000],  # 0.5 s short: mismatch
        "bobon_2_01": np.concatenate(
            [synth_estimates(refs["bobon_2_01"], 2), np.ones((2, 10))], axis=1
        ),
        "heycat_3_01": synth_estimates(refs["heycat_3_01"], 2),
    }
    write_estimates(tmp_path / "E.npz", ests)
    np.savez(
        tmp_path / "F.npz",
        clips=np.array(["heycat_3_01"]),
        voice__heycat_3_01=np.ones(5, np.float32),
        accompaniment__heycat_3_01=np.ones(6, np.float32),
    )
    df = S.score_estimates(clips, [tmp_path / "F.npz"], None, "fast_bss_eval").set_index("clip")
    assert df.loc["heycat_3_01", "status"].startswith("length mismatch: voice estimate has 5")
    df = S.score_estimates(clips, tmp_path / "E.npz", None, "fast_bss_eval").set_index("clip")
    assert df.loc["annar_1_01", "status"] == "ok" and df.loc["annar_1_01", "samples"] == 20000 - 320
    assert df.loc["annar_1_02", "status"].startswith("length mismatch")
    assert df.loc["bobon_2_01", "status"].startswith(
        "length mismatch: estimate has 16010 samples, reference 16000"
    )
    assert df.loc["heycat_3_01", "status"] == "ok"


# ----------------------------------------------------------------------------- bad inputs


def test_bad_inputs_give_clear_messages(tmp_path, capsys):
    cat, refs = write_corpus(tmp_path)
    write_estimates(tmp_path / "E.npz", {"annar_1_01": synth_estimates(refs["annar_1_01"], 0)})
    base = [
        "--catalogue",
        str(cat),
        "-o",
        str(tmp_path / "s.tsv"),
        "--variant",
        "v",
        "--step",
        "1",
        "--no-progress",
    ]

    def err(argv):
        capsys.readouterr()
        assert main(argv) == 2
        return capsys.readouterr().err

    e = err(["score", "--estimates", str(tmp_path / "nope.npz"), *base])
    assert "nope.npz" in e and "estimates file not found" in e and "Traceback" not in e
    e = err(["score", "--estimates", str(cat), *base])
    assert "cannot read as an estimates .npz" in e
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    e = err(["score", "--estimates", str(tmp_path / "other.npz"), *base])
    assert "not an estimates file" in e
    e = err(["score", "--estimates", str(tmp_path / "E.npz"), "--baseline", str(cat), *base])
    assert "not a baseline table" in e and "hourglass-sep baseline" in e
    assert (
        main(
            [
                "baseline",
                "--catalogue",
                str(cat),
                "--shard",
                "0/2",
                "-o",
                str(tmp_path / "b0.tsv"),
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    e = err(
        [
            "score",
            "--estimates",
            str(tmp_path / "E.npz"),
            "--baseline",
            str(tmp_path / "b0.tsv"),
            *base,
        ]
    )
    assert "lack 2 of the 4 clips" in e and "every shard" in e
    e = err(["score", "--estimates", str(tmp_path / "E.npz"), "--shard", "2/2", *base])
    assert "--shard" in e
    e = err(["baseline", "--catalogue", str(tmp_path / "nope.tsv"), "-o", str(tmp_path / "b.tsv")])
    assert "catalogue not found" in e
    assert not (tmp_path / "s.tsv").exists()


def test_missing_backend_names_the_pip_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "fast_bss_eval" else real(name, *a),
    )
    monkeypatch.setattr(backends, "_BACKEND_CACHE", {})
    monkeypatch.delitem(sys.modules, "hourglass_sep._fast_bss_eval_numpy", raising=False)
    with pytest.raises(UserError, match="pip install fast-bss-eval"):
        get_backend("fast_bss_eval")
    with pytest.raises(UserError, match="unknown scoring backend"):
        get_backend("bss_eval_matlab")


def test_backends_need_neither_ffmpeg_nor_torch():
    """museval's metrics load without musdb/stempeg (which need ffmpeg), fast_bss_eval
    without torch."""
    code = (
        "import sys, numpy as np\n"
        "from hourglass_sep.scoring.backends import BACKENDS, bss_eval_sources\n"
        "import hourglass_sep.scoring.reference_cache, hourglass_sep.scoring.score\n"
        "r = np.random.default_rng(0).standard_normal((2, 4000))\n"
        "for b in BACKENDS: bss_eval_sources(r, r + 0.1 * r[::-1] + 0.01, b)\n"
        "bad = [m for m in ('musdb', 'stempeg', 'museval', 'torch', 'fast_bss_eval')\n"
        "       if m in sys.modules]\n"
        "print('LOADED', bad)\n"
    )
    env = dict(os.environ, PATH="/nonexistent")  # no ffmpeg / ffprobe reachable
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout


# ----------------------------------------------------------------------------- cached backend


def test_block_correlations_match_direct_sums():
    """Overlap-save blocks give sum_t r[i, t] e[j, t + a] exactly, across block boundaries."""
    from hourglass_sep.scoring import bss_eval as B

    rng = np.random.default_rng(7)
    for n in (700, B.BLOCK_FFT, 9000):
        refs, ests = rng.standard_normal((2, n)), rng.standard_normal((2, n))
        got = B.correlations(refs, ests, 64)
        pad = np.concatenate([ests, np.zeros((2, 63))], axis=1)
        want = np.array(
            [[[refs[i] @ pad[j, a : a + n] for j in range(2)] for a in range(64)] for i in range(2)]
        )
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())


def test_factors_pack_round_trip_and_gram(tmp_path):
    """The packed triangles are lower Cholesky factors (L00 L00^T is the references' delayed
    Gram matrix) and come back unchanged from a cache file."""
    import zipfile

    from hourglass_sep.scoring import bss_eval as B
    from hourglass_sep.scoring import reference_cache as RC

    refs = synth_refs(8, 4000)
    f = B.factorise(refs)
    full = f.unpacked()
    assert f.chol.shape == (3, 512 * 513 // 2) and np.array_equal(full, np.tril(full))
    # G00[0, 5] = <r0, r0 delayed by 5 samples>
    lagged = np.concatenate([refs[0], np.zeros(5)]) @ np.concatenate([np.zeros(5), refs[0]])
    assert (full[0] @ full[0].T)[0, 5] == pytest.approx(lagged, rel=1e-9)
    # the cache file gives back the same arrays (read in place from the mapped file)
    clip = "x_1_01"
    with zipfile.ZipFile(tmp_path / "c.npz", "w") as zf:
        for key, arr in f.to_arrays().items():
            RC._write_array(zf, f"{key}__{clip}", arr)
    g = RC.load_factors(str(tmp_path / "c.npz"), clip, f.samples)
    for a, b in zip(g.to_arrays().values(), f.to_arrays().values()):
        np.testing.assert_array_equal(a, b)
    assert not g.chol.flags.writeable  # a view of the file, not a copy


@pytest.mark.parametrize("seed", [2, 3])
def test_cached_with_factors_matches_mir_eval(seed):
    from hourglass_sep.scoring import bss_eval as B

    refs = synth_refs(seed)
    ests = synth_estimates(refs, seed)
    f = B.factorise(refs)
    want = mir_eval_sources(refs, ests)
    assert_close(bss_eval_sources(refs, ests, "cached", factors=f), want)
    assert_close(B.sources_scores(f, refs, ests), want)
    mix = mir_eval_sources(refs, np.stack([refs.mean(0)] * 2))
    from_factors = mixture_scores_from_factors(f)
    for i, s in enumerate(SOURCES):
        assert abs(from_factors[f"{s}_mix_sdr"] - mix["sdr"][i]) <= TOL
        assert abs(from_factors[f"{s}_mix_sir"] - mix["sir"][i]) <= TOL
        assert from_factors[f"{s}_mix_sar"] > 100  # +inf in theory, floored at ~156.5 dB


def test_cached_degenerate_references():
    """Identical references make the Gram matrix singular: the factorisation fails, the
    cache records why, and the cached backend scores such a clip with museval's least
    squares (same numbers as the museval backend)."""
    refs = synth_refs(9)
    same = np.stack([refs[0], refs[0]])
    ests = synth_estimates(same, 9)
    got = bss_eval_sources(same, ests, "cached")
    want = bss_eval_sources(same, ests, "museval")
    for k in ("sdr", "sir", "sar"):
        np.testing.assert_array_equal(got[k], want[k])
    # an estimate exactly equal to its reference: SDR and SIR infinite in theory
    exact = bss_eval_sources(refs, refs.copy(), "cached")
    assert (exact["sdr"] > 100).all() and np.isfinite(exact["sdr"]).all()


def _clip_rows(cat):
    return evaluated_clips(pd.read_csv(cat, sep="\t"))


def test_reference_cache_build_and_policies(tmp_path):
    """Silent and singular references are recorded, not fatal; the baseline from the cache
    equals the baseline computed from the audio, and keeps the silent-reference status."""
    from hourglass_sep.scoring import reference_cache as RC

    cat, refs = write_corpus(tmp_path)
    wav = tmp_path / "Wavfile"
    r = refs["bobon_2_01"]
    sf.write(wav / "bobon_2_01.wav", np.stack([r[0] * 0, r[0]]).T, SR, subtype="PCM_16")
    r = refs["heycat_3_01"]
    sf.write(wav / "heycat_3_01.wav", np.stack([r[0], r[0]]).T, SR, subtype="PCM_16")
    clips = _clip_rows(cat)
    rows = {row["clip"]: row for row in RC.build_cache(clips, tmp_path / "refs.npz")}
    assert rows["annar_1_01"]["status"] == "ok"
    assert rows["bobon_2_01"]["status"].startswith("silent reference (all zeros): accompaniment")
    assert rows["heycat_3_01"]["status"] == RC.NOT_PD
    cached = S.mixture_baseline(clips, "cached", references=tmp_path / "refs.npz")
    direct = S.mixture_baseline(clips, "museval")
    assert cached["status"].tolist() == direct["status"].tolist()
    ok = direct["status"] == "ok"
    cols = [c for c in MIX_COLUMNS if not c.endswith("_sar")]
    np.testing.assert_allclose(
        cached.loc[ok, cols].to_numpy(float), direct.loc[ok, cols].to_numpy(float), atol=TOL
    )
    assert cached["scorer"].iloc[0].startswith("cached ")


def test_reference_cache_stale_missing_and_bad_files(tmp_path):
    from hourglass_sep.scoring import reference_cache as RC

    cat, refs = write_corpus(tmp_path)
    clips = _clip_rows(cat)
    RC.build_cache(clips.iloc[:2], tmp_path / "part.npz")
    with pytest.raises(UserError, match="lack 2 of the 4 clips"):
        S.mixture_baseline(clips, "cached", references=[tmp_path / "part.npz"])
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a reference cache"):
        S.mixture_baseline(clips, "cached", references=[tmp_path / "junk.npz"])
    with pytest.raises(UserError, match="reference cache not found"):
        S.mixture_baseline(clips, "cached", references=[tmp_path / "nope.npz"])
    RC.build_cache(clips, tmp_path / "refs.npz")
    # the audio of a clip changes after the cache was built (same length): refused
    r = refs["annar_1_01"]
    sf.write(tmp_path / "Wavfile" / "annar_1_01.wav", np.stack([r[0], r[1]]).T, SR)
    ests = {c: synth_estimates(refs[c], 1) for c in refs}
    write_estimates(tmp_path / "E.npz", ests)
    with pytest.raises(UserError, match="stale"):
        S.score_estimates(
            clips, tmp_path / "E.npz", None, "cached", references=tmp_path / "refs.npz"
        )


def test_cli_cached_backend_with_reference_cache(tmp_path, capsys):
    """references -> baseline --references -> score --references (two workers): same
    numbers as museval without any cache; a shorter estimate is scored on the fly."""
    cat, refs = write_corpus(tmp_path)
    for k in (0, 1):
        assert (
            main(
                ["references", "--catalogue", str(cat), "--shard", f"{k}/2"]
                + ["-o", str(tmp_path / f"r{k}.npz"), "--workers", "1", "--no-progress"]
            )
            == 0
        )
    assert "reference factorisations of 2 clips (2 ok)" in capsys.readouterr().out
    caches = [str(tmp_path / "r0.npz"), str(tmp_path / "r1.npz")]
    common = ["--catalogue", str(cat), "--no-progress", "--backend", "cached"]
    out = tmp_path / "b.tsv"
    assert main(["baseline", *common, "--references", *caches, "-o", str(out)]) == 0
    ests = {c: synth_estimates(refs[c], 1) for c in ("annar_1_01", "annar_1_02", "heycat_3_01")}
    ests["annar_1_02"] = ests["annar_1_02"][:, :-400]  # 25 ms short: factors of the cut clip
    write_estimates(tmp_path / "E.npz", ests)
    score = ["score", *common, "--estimates", str(tmp_path / "E.npz"), "--variant", "v"]
    score += ["--step", "1", "--workers", "2", "--baseline", str(out)]
    assert main([*score, "--references", *caches, "-o", str(tmp_path / "s.tsv")]) == 0
    got = pd.read_csv(tmp_path / "s.tsv", sep="\t").set_index("clip")
    assert list(pd.read_csv(tmp_path / "s.tsv", sep="\t").columns) == SCORE_COLUMNS
    assert got.loc["bobon_2_01", "status"] == "missing from estimates"
    want = S.score_estimates(_clip_rows(cat), tmp_path / "E.npz", None, "museval")
    want = want.set_index("clip")
    ok = got.index[got["status"] == "ok"]
    assert len(ok) == 3 and got.loc["annar_1_02", "mix_from"] == "recomputed"
    cols = [f"{s}_{m}" for s in SOURCES for m in ("sdr", "sir", "sar", "nsdr", "mix_sdr")]
    np.testing.assert_allclose(
        got.loc[ok, cols].to_numpy(float), want.loc[ok, cols].to_numpy(float), atol=TOL
    )


@pytest.mark.realdata
def test_cached_matches_museval_and_mir_eval_real_clips(tmp_path):
    """Real MIR-1K test clips (3 shortest + the longest at hand), through the reference cache
    file: SDR/SIR/SAR of both sources and the mixture's SDR/SIR within 1e-3 dB of museval's
    and mir_eval's bss_eval_sources."""
    from hourglass_sep.scoring import reference_cache as RC

    test = real_test_clips(415)
    clips = pd.concat([test.head(3), test.tail(1)]).sort_values("clip")
    RC.build_cache(clips, tmp_path / "refs.npz")
    entries = S.reference_entries(clips, [tmp_path / "refs.npz"], "cached")
    for r in clips.itertuples(index=False):
        refs, _ = read_references(r.path)
        e = entries[r.clip]
        factors = RC.load_factors(e["path"], r.clip, e["samples"])
        ests = synth_estimates(refs, 1)
        got = bss_eval_sources(refs, ests, "cached", factors=factors)
        assert_close(got, museval_v3(refs, ests))
        assert_close(got, mir_eval_sources(refs, ests))
        mix = np.stack([refs.mean(0)] * 2)
        want_mix = museval_v3(refs, mix)
        m = mixture_scores_from_factors(factors)
        for i, s in enumerate(SOURCES):
            assert abs(m[f"{s}_mix_sdr"] - want_mix["sdr"][i]) <= TOL
            assert abs(m[f"{s}_mix_sir"] - want_mix["sir"][i]) <= TOL
