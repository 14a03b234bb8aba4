"""The ``si_sdr`` scoring backend (one module in scoring/scorers/): known answers on
constructed signals, scale invariance, and its place in the backend registry."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass_sep.scoring.backends import BACKENDS, REGISTRY, bss_eval_sources
from hourglass_sep.scoring.score import score_clip
from hourglass_sep.scoring.scorers.si_sdr import si_metrics


def orthonormal(k: int, n: int = 4000, seed: int = 0) -> np.ndarray:
    """``k`` mutually orthogonal unit-norm signals of ``n`` samples."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, k)))
    return q.T


def test_pure_artifact_and_pure_interference_give_the_textbook_values():
    r0, r1, noise = orthonormal(3)
    refs = np.stack([3.0 * r0, 2.0 * r1])
    # voice: its reference + 0.1 x (unit noise orthogonal to both references): artifacts only
    # accompaniment: its reference + 0.5 x the other reference: interference only
    ests = np.stack([refs[0] + 0.1 * noise, refs[1] + 0.5 * refs[0]])
    m = si_metrics(refs, ests)
    sdr0 = 10 * np.log10(9.0 / 0.01)
    assert m["sdr"][0] == pytest.approx(sdr0) and m["sar"][0] == pytest.approx(sdr0)
    assert m["sir"][0] > 200  # no interference at all (rounding only)
    sir1 = 10 * np.log10(4.0 / (0.25 * 9.0))
    assert m["sdr"][1] == pytest.approx(sir1) and m["sir"][1] == pytest.approx(sir1)
    assert m["sar"][1] > 200


def test_scale_invariance_and_the_plain_formula():
    rng = np.random.default_rng(1)
    refs = rng.standard_normal((2, 8000))
    ests = refs + 0.3 * rng.standard_normal((2, 8000)) + 0.2 * refs[::-1]
    m = si_metrics(refs, ests)
    for k in ("sdr", "sir", "sar"):
        np.testing.assert_allclose(si_metrics(refs, 0.01 * ests)[k], m[k], rtol=1e-10)
    for i in range(2):  # SI-SDR as Le Roux et al. write it
        alpha = ests[i] @ refs[i] / (refs[i] @ refs[i])
        target = alpha * refs[i]
        want = 10 * np.log10(target @ target / np.sum((ests[i] - target) ** 2))
        assert m["sdr"][i] == pytest.approx(want)


def test_registered_after_the_bss_eval_backends_and_scored_like_them():
    assert BACKENDS[-1] == "si_sdr" and REGISTRY["si_sdr"].family == "scale_invariant"
    assert BACKENDS[:4] == ("museval", "fast_bss_eval", "cached", "mir_eval")
    rng = np.random.default_rng(2)
    refs = rng.standard_normal((2, 8000))
    ests = refs + 0.2 * rng.standard_normal((2, 8000))
    got = bss_eval_sources(refs, ests, "si_sdr")
    np.testing.assert_allclose(got["sdr"], si_metrics(refs, ests)["sdr"])
    row = score_clip(refs, ests, backend="si_sdr")  # the NSDR baseline scored the same way
    assert row["status"] == "ok"
    assert row["voice_nsdr"] == pytest.approx(row["voice_sdr"] - row["voice_mix_sdr"])
