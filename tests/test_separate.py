"""Separation: BN folding, schedules, bf16, the `separate` CLI (files and workflow shards)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import MIR1K, needs_mir1k, write_clip

from hourglass_sep.cli import main
from hourglass_sep.data.audio import read_audio
from hourglass_sep.data.features import clip_features
from hourglass_sep.errors import UserError
from hourglass_sep.nets.hardware import cpu_bf16_usable
from hourglass_sep.nets.inference import (
    MODEL_FORMAT,
    add_upsampled_,
    fold_batchnorm,
    load_model,
    prepare_model,
)
from hourglass_sep.nets.model import build_model, loss_terms
from hourglass_sep.nets.settings import ArchConfig
from hourglass_sep.separation import separate as S
from hourglass_sep.separation import windowing as schedules
from hourglass_sep.separation.windowing import chunk_plan, window_plan

TINY = ArchConfig(stacks=1, channels=8, growth=4, stem=(8,), poolings=3)  # trained below
TWO = ArchConfig(
    stacks=2, channels=8, growth=4, stem=(8, 8), poolings=3
)  # stacks merge: folding test


pytestmark = pytest.mark.usefixtures("one_thread")


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Plain signal-to-distortion ratio (dB) of ``est`` against ``ref``."""
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - est) ** 2), 1e-30)))


def _randomise_bn(net: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, np.ndarray, int]:
    path = write_clip(tmp_path_factory.mktemp("clip") / "song_1_01.wav", seconds=4.0)
    audio, sr = read_audio(path)
    return path, audio, sr


@pytest.fixture(scope="module")
def trained(clip):
    """A tiny network trained for 30 steps on the test clip (smooth masks, unlike random weights).

    Random-weight networks with normalised activations are chaotic: a 1e-3 change of
    the input flips many ReLUs, so bf16 and schedule comparisons on them measure the
    network's instability, not the inference code.  A few training steps fix that.
    """
    _, audio, sr = clip
    f = clip_features(audio, sr)
    mix, voice, acc = (torch.from_numpy(a) for a in (f.mixture, f.voice, f.accompaniment))
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = build_model(TINY)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    net.train()
    for _ in range(30):
        starts = rng.integers(0, mix.shape[1] - 64, 4)
        batch = [
            torch.stack([a[:, s : s + 64] for s in starts])[:, None] for a in (mix, voice, acc)
        ]
        loss = sum(loss_terms(p, *batch, TINY.target) for p in net(batch[0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, trained) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.save(
        {
            "format": MODEL_FORMAT,
            "arch": TINY.to_dict(),
            "state_dict": trained.state_dict(),
            "train": {},
            "step": 30,
            "wall_seconds": 1.0,
            "device": "cpu",
        },
        path,
    )
    return path


# ------------------------------------------------------------------ library
def test_fold_batchnorm_preserves_output():
    torch.manual_seed(1)
    net = build_model(TWO).eval()
    _randomise_bn(net)
    x = torch.rand(2, 1, 512, 24)
    with torch.no_grad():
        ref = net(x)
    folded = build_model(TWO)
    folded.load_state_dict(net.state_dict())
    folded.eval()
    assert fold_batchnorm(folded) == sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        out = folded(x)
    for r, o in zip(ref, out):
        assert (o - r).norm() / r.norm() < 1e-4
    # the bundle (folded, in-place adds, channels_last) gives the same prediction too
    for kw in (dict(), dict(channels_last=False), dict(inplace=False)):
        bundle = prepare_model(net, TWO, "cpu", "fp32", **kw)
        pred = S._forward(bundle, x)
        assert (pred - ref[-1]).norm() / ref[-1].norm() < 1e-4
    assert any(
        isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()
    )  # the original is untouched


def test_add_upsampled_in_place_matches_interpolate():
    import torch.nn.functional as F

    low = torch.rand(2, 3, 4, 5)
    for fmt in (torch.contiguous_format, torch.channels_last):
        skip = torch.rand(2, 3, 8, 10).contiguous(memory_format=fmt)
        ref = skip + F.interpolate(
            low.contiguous(memory_format=fmt), scale_factor=2, mode="nearest"
        )
        out = add_upsampled_(skip, low.contiguous(memory_format=fmt))
        assert out.data_ptr() == skip.data_ptr() and torch.equal(out, ref)
    odd = torch.rand(2, 3, 9, 10)  # not exactly 2x: falls back to interpolate to the size
    ref = odd + F.interpolate(low, size=(9, 10), mode="nearest")
    assert torch.equal(add_upsampled_(odd.clone(), low), ref)


def test_window_plan_covers_every_frame():
    for frames in (64, 65, 95, 96, 97, 128, 200, 2001):
        plan = window_plan(frames)
        covered = np.zeros(frames, bool)
        for s, a, b in plan:
            assert 0 <= s and s + 64 <= frames and s <= a < b <= s + 64
            covered[a:b] = True
        assert covered.all() and plan[0] == (0, 0, 64) and plan[-1][2] == frames
        for s, a, b in plan[1:-1]:
            assert (a - s, b - s) == (16, 48)


def test_windowed_and_whole_estimates_agree(trained, clip):
    _, audio, sr = clip
    bundle = prepare_model(trained, TINY, "cpu", "fp32")
    v, a = S.separate_waveform(bundle, audio, sr, schedule="whole")
    vw, aw = S.separate_waveform(bundle, audio, sr, schedule="windowed", windows_per_batch=3)
    sv, sa = sdr(v, vw), sdr(a, aw)
    print(f"SDR(windowed vs whole): voice {sv:.1f} dB, accompaniment {sa:.1f} dB")
    # they differ only through the context each frame's prediction sees
    assert sv > 15 and sa > 15
    # windows per batch changes nothing but speed
    v1, _ = S.separate_waveform(bundle, audio, sr, schedule="windowed", windows_per_batch=1)
    assert np.abs(v1 - vw).max() < 1e-5


@pytest.mark.skipif(
    not cpu_bf16_usable(), reason="this CPU/torch build has no oneDNN bfloat16 convolutions"
)
def test_bf16_changes_estimate_negligibly(trained, clip):
    _, audio, sr = clip
    ref = np.concatenate(
        S.separate_waveform(prepare_model(trained, TINY, "cpu", "fp32"), audio, sr)
    )
    est = np.concatenate(
        S.separate_waveform(prepare_model(trained, TINY, "cpu", "bf16"), audio, sr)
    )
    rel = np.linalg.norm(est - ref) / np.linalg.norm(ref)
    print(f"bf16 vs fp32 relative change of the estimate: {rel:.2e}")
    assert rel < 1e-2


def test_separate_many_equals_one_by_one(trained, clip):
    _, audio, sr = clip
    bundle = prepare_model(trained, TINY, "cpu", "fp32")
    clips = [(audio, sr), (audio[:, :20000], sr), (audio[1, :9000], 44100), (audio[:, :20001], sr)]
    many = S.separate_many(bundle, clips, max_batch_frames=10_000)
    for (x, r), (v, a) in zip(clips, many):
        v1, a1 = S.separate_waveform(bundle, x, r)
        n = x.shape[-1]
        assert v.shape == a.shape == (n,) and v.dtype == np.float32
        assert np.abs(v - v1).max() < 1e-4 and np.abs(a - a1).max() < 1e-4
    assert S.separate_many(bundle, [audio[0]], sr=sr)[0][0].shape == (audio.shape[1],)


def test_silence_and_target_modes(clip):
    _, audio, sr = clip
    for target in ("voice", "accompaniment", "end-to-end"):
        arch = ArchConfig(stacks=1, channels=4, growth=4, stem=(4,), poolings=3, target=target)
        bundle = prepare_model(build_model(arch), arch, "cpu", "fp32")
        v, a = S.separate_waveform(bundle, audio[:, :8000], sr)
        assert v.shape == a.shape == (8000,) and np.isfinite(v).all() and np.isfinite(a).all()
        v, a = S.separate_waveform(bundle, np.zeros((2, 5000), np.float32), sr)
        assert not v.any() and not a.any()


# ----------------------------------------------------------------------- CLI
def _run(capsys, *argv) -> tuple[int, str]:
    rc = main(["separate", *map(str, argv), "--no-progress"])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def test_cli_separates_files(tmp_path, capsys, model_file, clip):
    path, audio, sr = clip
    # mono 44.1 kHz flac and a stereo 16-bit wav
    mono = tmp_path / "in" / "mono_44k.flac"
    mono.parent.mkdir()
    sf.write(str(mono), np.tile(audio.mean(0), 2)[: 44100 * 2], 44100, subtype="PCM_16")
    out = tmp_path / "out"
    rc, text = _run(capsys, path, mono, "--model", model_file, "-o", out, "--threads", "1")
    assert rc == 0, text
    for src, (n, rate) in {path: (audio.shape[1], sr), mono: (88200, 44100)}.items():
        for name in ("voice.wav", "accompaniment.wav"):
            info = sf.info(str(out / src.stem / name))
            assert (info.frames, info.samplerate, info.channels, info.subtype) == (
                n,
                rate,
                1,
                "PCM_16",
            )
    # the windowed schedule and float output
    rc, text = _run(
        capsys,
        path,
        "--model",
        model_file,
        "-o",
        tmp_path / "w",
        "--schedule",
        "windowed",
        "--windows-per-batch",
        "2",
        "--float",
        "--precision",
        "fp32",
    )
    assert rc == 0, text
    assert sf.info(str(tmp_path / "w" / path.stem / "voice.wav")).subtype == "FLOAT"


@needs_mir1k()
def test_cli_real_clip(tmp_path, capsys, model_file):
    real = MIR1K / "Wavfile" / "annar_4_01.flac"
    if not real.exists():
        pytest.skip(f"{real} not found")
    rc, text = _run(capsys, real, "--model", model_file, "-o", tmp_path)
    assert rc == 0, text
    n = sf.info(str(real)).frames
    v, r = sf.read(str(tmp_path / "annar_4_01" / "voice.wav"))
    assert (v.shape, r) == ((n,), 16000) and np.abs(v).max() > 0


def test_cli_rejects_bad_inputs(tmp_path, capsys, model_file, clip):
    path, audio, sr = clip
    out = tmp_path / "out"
    rc, text = _run(capsys, tmp_path / "nope.wav", "--model", model_file, "-o", out)
    assert rc == 2 and "nope.wav: no such file" in text
    notaudio = tmp_path / "notes.wav"
    notaudio.write_text("this is not audio\n" * 10)
    rc, text = _run(capsys, notaudio, "--model", model_file, "-o", out)
    assert rc == 2 and "cannot read as audio" in text
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    rc, text = _run(capsys, empty, "--model", model_file, "-o", out)
    assert rc == 2 and "empty (0 bytes)" in text
    nosamples = tmp_path / "nosamples.wav"
    sf.write(str(nosamples), np.zeros((0, 2), np.float32), 16000)
    rc, text = _run(capsys, nosamples, "--model", model_file, "-o", out)
    assert rc == 2 and "holds no samples" in text
    # an input that is exactly an output path: OUT/voice/voice.wav
    victim = out / "voice" / "voice.wav"
    victim.parent.mkdir(parents=True)
    sf.write(str(victim), audio.T, sr)
    before = victim.read_bytes()
    rc, text = _run(capsys, victim, "--model", model_file, "-o", out)
    assert rc == 2 and "would overwrite the input" in text
    assert victim.read_bytes() == before
    # two inputs with the same stem
    other = tmp_path / "b" / path.name
    other.parent.mkdir()
    other.write_bytes(path.read_bytes())
    rc, text = _run(capsys, path, other, "--model", model_file, "-o", out)
    assert rc == 2 and "same name" in text
    assert not (out / path.stem).exists()


def test_cli_rejects_bad_models(tmp_path, capsys, clip):
    path = clip[0]
    rc, text = _run(capsys, path, "--model", tmp_path / "missing.pt", "-o", tmp_path / "o")
    assert rc == 2 and "model file not found" in text
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    rc, text = _run(capsys, path, "--model", corrupt, "-o", tmp_path / "o")
    assert rc == 2 and "corrupt" in text
    foreign = tmp_path / "foreign.pt"
    torch.save(build_model(TINY).state_dict(), foreign)  # a bare state_dict, no "arch"
    rc, text = _run(capsys, path, "--model", foreign, "-o", tmp_path / "o")
    assert rc == 2 and "not an hourglass-sep model" in text
    mismatch = tmp_path / "mismatch.pt"
    torch.save(
        {
            "format": MODEL_FORMAT,
            "arch": ArchConfig(stacks=1, channels=4, growth=4, stem=(4,)).to_dict(),
            "state_dict": build_model(TINY).state_dict(),
        },
        mismatch,
    )
    rc, text = _run(capsys, path, "--model", mismatch, "-o", tmp_path / "o")
    assert rc == 2 and "do not fit the recorded architecture" in text
    with pytest.raises(UserError, match="corrupt"):
        load_model(corrupt)


def test_cli_shard_mode(small_corpus, tmp_path, capsys, model_file):
    from hourglass_sep.data.catalogue import build_catalogue, write_table

    df = build_catalogue(small_corpus)
    df["evaluate"] = df["split"].eq("test") & ~df["clip"].eq(
        "bobby_1_02"
    )  # one test clip not evaluated
    cat = tmp_path / "catalogue.tsv"
    write_table(df, cat)
    evaluated = sorted(df[df["evaluate"]]["clip"])
    assert evaluated == ["bobby_1_01", "carl_3_01"]
    seen = []
    for i in range(2):
        est = tmp_path / f"est{i}.npz"
        rc, text = _run(
            capsys,
            "--model",
            model_file,
            "--catalogue",
            cat,
            "--shard",
            f"{i}/2",
            "--estimates",
            est,
            "--schedule",
            "windowed" if i else "whole",
        )
        assert rc == 0, text
        with np.load(est, allow_pickle=False) as z:
            clips = [str(c) for c in z["clips"]]
            assert clips == evaluated[i::2]
            meta = json.loads(str(z["meta"]))
            assert meta["clips"] == len(clips) and meta["schedule"] == (
                "windowed" if i else "whole"
            )
            assert {"seconds", "device", "precision"} <= set(meta)
            for c in clips:
                row = df[df["clip"] == c].iloc[0]
                for src in ("voice", "accompaniment"):
                    a = z[f"{src}__{c}"]
                    assert a.dtype == np.float32 and a.shape == (row["samples"],)
        seen += clips
    assert sorted(seen) == evaluated
    rc, text = _run(
        capsys,
        "--model",
        model_file,
        "--catalogue",
        cat,
        "--shard",
        "2/2",
        "--estimates",
        tmp_path / "x.npz",
    )
    assert rc == 2 and "0 <= I < N" in text


# ------------------------------------------------------- segments, full band
def constant_mask_net(arch: ArchConfig, value: float) -> torch.nn.Module:
    """A real network whose last head outputs ``value`` everywhere (zero kernel, bias value).

    Its masks are known exactly, so the full-band and segment arithmetic can be checked
    against the mixture itself.
    """
    net = build_model(arch).eval()
    head = net.heads[-1]
    with torch.no_grad():
        head[0].weight.zero_()
        head[0].bias.fill_(value)
    return net


def test_chunk_plan_and_weights_sum_to_one():
    cases = [(100, 128, 32, 32), (129, 128, 32, 32), (1000, 128, 32, 32), (5000, 512, 64, 8)]
    for frames, chunk, overlap, multiple in cases:
        plan = chunk_plan(frames, chunk, overlap, multiple)
        assert plan[0][0] == 0 and plan[-1][1] == frames
        assert all(a % multiple == 0 and 0 < b - a <= chunk for a, b in plan)
        weights = schedules.chunk_weights(plan)
        total = np.zeros(frames)
        for (a, b), w in zip(plan, weights):
            total[a:b] += w
        assert np.allclose(total, 1.0)
        for (_, a1), (b0, _), w0, w1 in zip(plan, plan[1:], weights, weights[1:]):
            shared = a1 - b0
            assert shared >= overlap  # the first and last quarter of it: context only
            assert not w1[: shared // 4].any() and not w0[len(w0) - shared // 4 :].any()
    with pytest.raises(UserError, match="multiple"):
        schedules.check_chunking(100, 32, 32)
    with pytest.raises(UserError, match="overlap"):
        schedules.check_chunking(128, 100, 32)
    assert schedules.check_chunking(2048, None, 32) == 256
    assert schedules.check_chunking(128, None, 32) == 64


def test_chunked_matches_whole_and_is_continuous(trained, clip):
    _, audio, sr = clip  # 4 s = 126 frames; segments of 48 frames cut it in 4
    bundle = prepare_model(trained, TINY, "cpu", "fp32")
    one = S.separate_waveform(bundle, audio, sr, chunk_frames=None)
    fits = S.separate_waveform(bundle, audio, sr, chunk_frames=128)  # fits: one pass
    assert all(np.array_equal(a, b) for a, b in zip(one, fits))
    cut = S.separate_waveform(bundle, audio, sr, chunk_frames=48, overlap_frames=24)
    sv, sa = sdr(one[0], cut[0]), sdr(one[1], cut[1])
    print(f"SDR(4 segments vs one pass): voice {sv:.1f} dB, accompaniment {sa:.1f} dB")
    assert sv > 28 and sa > 28
    # a tone across the segment boundaries comes out without clicks: its sample-to-sample
    # steps stay within those of the one-pass estimate
    t = np.arange(4 * sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    v1, _ = S.separate_waveform(bundle, tone, sr, chunk_frames=None)
    vc, _ = S.separate_waveform(bundle, tone, sr, chunk_frames=48, overlap_frames=24)
    assert np.abs(np.diff(vc)).max() <= 1.05 * np.abs(np.diff(v1)).max() + 1e-4
    # with constant masks, segments change nothing at all
    net = constant_mask_net(TINY, 0.25)
    flat = prepare_model(net, TINY, "cpu", "fp32")
    v, a = S.separate_waveform(flat, tone, sr, chunk_frames=48, overlap_frames=24)
    vw, aw = S.separate_waveform(flat, tone, sr, chunk_frames=None)
    assert np.abs(v - vw).max() < 1e-5 and np.abs(a - aw).max() < 1e-5


def _band_energy(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(spec[(f >= lo) & (f < hi)].sum())


@pytest.mark.parametrize("sr", [16000, 44100])
def test_full_band_keeps_the_top_band(sr):
    """Constant masks 0.25 / 0.75: below 4 kHz the stems are 0.25 and 0.75 x the mixture,
    above it their energy shares 0.1 / 0.9 (0.25² : 0.75²); the stems add up to the mixture."""
    arch = ArchConfig(stacks=1, channels=4, growth=0, stem=(4,), poolings=3)
    net = build_model(arch).eval()
    with torch.no_grad():
        net.heads[-1][0].weight.zero_()
        net.heads[-1][0].bias.copy_(torch.tensor([0.25, 0.75]))
    bundle = prepare_model(net, arch, "cpu", "fp32")
    noise = np.random.default_rng(0).standard_normal(3 * sr).astype(np.float32) * 0.1
    v, a = S.separate_waveform(bundle, noise, sr, full_band=True)
    assert np.abs(v + a - noise).max() < 1e-4
    for lo, hi, share in [(100, 3900, 0.25), (4100, sr / 2, 0.1)]:
        ratio = _band_energy(v, sr, lo, hi) / _band_energy(noise, sr, lo, hi)
        assert ratio == pytest.approx(share**2, rel=0.02)
    v8, _ = S.separate_waveform(bundle, noise, sr, full_band=False)
    assert _band_energy(v8, sr, 4100, sr / 2) < 1e-4 * _band_energy(v8, sr, 0, sr / 2)


def test_source_masks_match_sources_from_prediction():
    from hourglass_sep.nets.model import sources_from_prediction
    from hourglass_sep.separation import fullband as fb

    rng = np.random.default_rng(0)
    mix = rng.random((512, 20)).astype(np.float32) + 0.01
    for target, outputs in [("masks", 2), ("voice", 1), ("accompaniment", 1), ("end-to-end", 2)]:
        pred = rng.standard_normal((outputs, 512, 20)).astype(np.float32)
        v, a = sources_from_prediction(
            torch.from_numpy(pred)[None], torch.from_numpy(mix)[None, None], target
        )
        masks = fb.source_masks(pred, mix, target)
        assert np.allclose(masks[0] * mix, v[0, 0].numpy(), atol=1e-6)
        assert np.allclose(masks[1] * mix, a[0, 0].numpy(), atol=1e-6)
    # the top band: each source's share of the estimated 3-4 kHz energy, frame by frame
    masks = np.stack([np.full((512, 20), 0.2), np.full((512, 20), 0.8)]).astype(np.float32)
    assert np.allclose(fb.top_band_masks(masks, mix), [[0.04 / 0.68], [0.64 / 0.68]])


def test_song_blocks_fetch_the_song_only_after_freeing_the_8k_arrays():
    """A long song's peak: the full-band path frees the 8 kHz magnitude and audio (once the
    caller has dropped its references) before it fetches the mixture at its own rate."""
    import gc
    import weakref

    from hourglass_sep.separation import fullband as fb

    sr, n = 44100, 2 * 44100
    song = np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.1
    x8 = np.zeros(2 * 8000, np.float32)
    frames = fb.Grid.matching(8000).frames(len(x8))
    mag = np.ones((512, frames), np.float32)
    masks = np.full((2, 512, frames), 0.5, np.float32)
    refs, freed = [weakref.ref(mag), weakref.ref(x8)], []

    def fetch() -> np.ndarray:
        gc.collect()
        freed.append([r() is None for r in refs])
        return song

    blocks = fb.song_blocks(masks, mag, x8, fetch, sr, n)
    del mag, x8
    out = np.concatenate(list(blocks), axis=1)
    assert freed == [[True, True]]
    assert out.shape == (2, n) and np.abs(out.sum(0) - song).max() < 1e-4


def test_layouts(trained, clip):
    _, audio, sr = clip
    bundle = prepare_model(trained, TINY, "cpu", "fp32")
    first = S.separate_waveform(bundle, audio, sr)
    last = S.separate_waveform(bundle, audio.T, sr)  # soundfile.read's (samples, channels)
    assert all(np.array_equal(x, y) for x, y in zip(first, last))
    explicit = S.separate_waveform(bundle, audio.T, sr, layout="channels-last")
    assert np.array_equal(first[0], explicit[0])
    with pytest.raises(UserError, match="cannot tell channels from samples.*channels-last"):
        S.separate_waveform(bundle, np.zeros((8, 8), np.float32), sr)
    with pytest.raises(UserError, match=r"expected \(channels, samples\)"):
        S.separate_waveform(bundle, np.zeros((2, 3, 4), np.float32), sr)
    bad = audio.copy()
    bad[0, 5] = np.nan
    with pytest.raises(UserError, match="NaN"):
        S.separate_waveform(bundle, bad, sr)
