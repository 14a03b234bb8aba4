"""BSS Eval v3 ``bss_eval_sources`` for two sources, with the reference side factorised once.

BSS Eval v3 (Vincent et al. 2006, as in mir_eval / museval ``bss_eval_sources``) projects an
estimate ``e`` onto the span of the 512 delayed copies of its own reference (``P_j e``) and of
both references (``P e``).  With ``A`` the matrix of delayed references, ``G = A^T A`` (their
Gram matrix: a block Toeplitz matrix built from auto/cross-correlations) and ``D = A^T e``
(the references' correlations with the estimate), the energies the criteria need are
quadratic forms::

    |P_j e|^2 = D_j^T G_jj^-1 D_j          |P e|^2 = D^T G^-1 D

    SDR = |P_j e|^2 / (|e|^2 - |P_j e|^2)
    SIR = |P_j e|^2 / (|P e|^2 - |P_j e|^2)
    SAR = |P e|^2   / (|e|^2 - |P e|^2)

(each in dB; the differences are the energies of the error signals mir_eval builds, because
the projections are orthogonal and nested).  ``G`` depends on the references only, so its
Cholesky factors are computed once per clip (:func:`factorise`, cached on disk by
``hourglass_sep.scoring.reference_cache``) and every estimate then costs the correlations ``D``
(block FFTs) and five triangular solves.  For two sources the factors are those of the block
Cholesky factorisation: ``chol(G00)``, ``chol(G11)`` and ``chol`` of the Schur complement
``G11 - G10 G00^-1 G01``; ``G10`` itself is rebuilt from the stored cross-correlation lags.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy.fft import next_fast_len
from scipy.linalg.blas import dtpsv

FILTER_LEN = 512
# correlations with an estimate: blocks of BLOCK_FFT - FILTER_LEN + 1 samples, FFT size BLOCK_FFT
BLOCK_FFT = 4096
# a denominator below rounding level (an estimate in the span of the references, e.g. the
# mixture's SAR) is floored at EPS * |e|^2: the ratio reads 10*log10(1/EPS) ~ 156.5 dB
EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class ReferenceFactors:
    """What the scores of any estimate of one clip need from its two references.

    ``auto``: ``(2, L)`` autocorrelation lags ``0..L-1`` of reference 0 and 1;
    ``cross``: ``(2L-1,)`` ``c[k] = sum_u r1[u+k] r0[u]`` for ``k = -(L-1)..L-1``;
    ``chol``: ``(3, L(L+1)/2)`` lower Cholesky factors of ``G00``, ``G11`` and the Schur
    complement of ``G00`` in ``G``, packed by columns (LAPACK ``dtrttp`` layout: the solves
    read them as stored, e.g. straight from a memory-mapped cache file);
    ``samples``: the references' length.
    """

    samples: int
    auto: np.ndarray
    cross: np.ndarray
    chol: np.ndarray

    def g10(self) -> np.ndarray:
        return _g10(self.cross)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays the cache file stores (float64)."""
        return {"auto": self.auto, "cross": self.cross, "chol": self.chol}

    def unpacked(self) -> np.ndarray:
        """``(3, L, L)`` the three factors as full lower triangular matrices."""
        n = self.auto.shape[1]
        return np.stack([np.tril(sla.lapack.dtpttr(n, p, uplo="L")[0]) for p in self.chol])


def _g10(cross: np.ndarray) -> np.ndarray:
    """``G10[a, b] = <r1 delayed by a, r0 delayed by b> = c[b - a]`` (Toeplitz)."""
    lag0 = cross.size // 2
    return sla.toeplitz(cross[lag0::-1], cross[lag0:])


def _check_pair(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"{what} must have shape (2, samples); got {x.shape}")
    return x


def factorise(refs: np.ndarray, filter_len: int = FILTER_LEN) -> ReferenceFactors:
    """Correlations and Cholesky factors of the two references' Gram matrix.

    Raises ``numpy.linalg.LinAlgError`` when the Gram matrix is not numerically positive
    definite (e.g. identical references); callers then score with another method.
    """
    refs = _check_pair(refs, "references")
    n, lags = refs.shape[1], filter_len
    nfft = next_fast_len(n + lags - 1, real=True)  # linear, not circular, correlations
    spec = np.fft.rfft(refs, nfft)
    auto = np.fft.irfft(spec * spec.conj(), nfft)[:, :lags]
    c = np.fft.irfft(spec[1] * spec[0].conj(), nfft)
    cross = np.concatenate([c[nfft - lags + 1 :], c[:lags]])
    l00 = sla.cholesky(sla.toeplitz(auto[0]), lower=True)
    l11 = sla.cholesky(sla.toeplitz(auto[1]), lower=True)
    l10t = sla.solve_triangular(l00, _g10(cross).T, lower=True)  # L00^-1 G01
    schur = sla.toeplitz(auto[1]) - l10t.T @ l10t
    ls = sla.cholesky(schur, lower=True)
    packed = np.stack([sla.lapack.dtrttp(m, uplo="L")[0] for m in (l00, l11, ls)])
    return ReferenceFactors(n, auto, cross, packed)


def correlations(refs: np.ndarray, ests: np.ndarray, filter_len: int = FILTER_LEN) -> np.ndarray:
    """``D[i, a, j] = sum_t refs[i, t] * ests[j, t + a]`` for lags ``a < filter_len``.

    Computed block by block (overlap-save): each block of ``refs`` meets the stretch of
    ``ests`` it can reach within ``filter_len - 1`` samples, the blocks' cross-spectra are
    summed and one short inverse FFT gives the lags.  About twice as fast as one FFT over
    the whole clip, and the same numbers to rounding.  The reference blocks are written
    time-reversed (circularly), so their spectra come out conjugated: no conjugate copy.
    """
    refs = np.asarray(refs, dtype=np.float64)
    ests = np.asarray(ests, dtype=np.float64)
    n, lags = refs.shape[1], filter_len
    fft = max(BLOCK_FFT, next_fast_len(2 * lags, real=True))
    hop = fft - lags + 1
    blocks = -(-n // hop)
    rev = np.zeros((refs.shape[0], blocks, fft))  # rev[.., t] = block[(-t) mod fft]
    for b, start in enumerate(range(0, n, hop)):
        block = refs[:, start : start + hop]
        rev[:, b, 0] = block[:, 0]
        rev[:, b, fft - block.shape[1] + 1 :] = block[:, :0:-1]
    e = np.zeros((ests.shape[0], blocks * hop + lags - 1))
    e[:, : ests.shape[1]] = ests
    windows = np.lib.stride_tricks.sliding_window_view(e, fft, axis=1)[:, ::hop]
    cross = np.einsum("ibf,jbf->ijf", np.fft.rfft(rev), np.fft.rfft(windows))
    return np.fft.irfft(cross, fft)[..., :lags].transpose(0, 2, 1)


def _solve(packed: np.ndarray, rhs: np.ndarray, transposed: bool = False) -> np.ndarray:
    """``L^-1 rhs`` (or ``L^-T rhs``) for a packed lower triangle ``L``, column by column."""
    n = rhs.shape[0]
    out = np.empty_like(rhs)
    for k in range(rhs.shape[1]):
        out[:, k] = dtpsv(n, packed, rhs[:, k], lower=1, trans=int(transposed))
    return out


def _to_db(num: np.ndarray, den: np.ndarray, energy: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 10 * np.log10(num / np.maximum(den, EPS * energy))


def _criteria(
    factors: ReferenceFactors, d: np.ndarray, energy: np.ndarray, target: np.ndarray
) -> dict[str, np.ndarray]:
    """SDR/SIR/SAR of estimates with correlations ``d`` ``(2, L, k)``, energies ``(k,)``,
    each scored against reference ``target[j]``."""
    l00, l11, ls = factors.chol
    y0 = _solve(l00, d[0])
    y1 = _solve(l11, d[1])
    z = _solve(l00, y0, transposed=True)  # G00^-1 D0
    w = _solve(ls, d[1] - factors.g10() @ z)
    own = np.stack([np.einsum("ak,ak->k", y0, y0), np.einsum("ak,ak->k", y1, y1)])
    p_own = own[target, np.arange(d.shape[2])]  # |P_j e|^2
    p_all = own[0] + np.einsum("ak,ak->k", w, w)  # |P e|^2
    return {
        "sdr": _to_db(p_own, energy - p_own, energy),
        "sir": _to_db(p_own, p_all - p_own, energy),
        "sar": _to_db(p_all, energy - p_all, energy),
    }


def sources_scores(
    factors: ReferenceFactors, refs: np.ndarray, ests: np.ndarray
) -> dict[str, np.ndarray]:
    """SDR/SIR/SAR of ``ests[j]`` against ``refs[j]`` (j = 0, 1), no permutation.

    ``refs`` must be the references ``factors`` were computed from (their length is checked;
    the caller checks silence/NaN policies beforehand).
    """
    refs, ests = _check_pair(refs, "references"), _check_pair(ests, "estimates")
    if refs.shape[1] != factors.samples or ests.shape[1] != factors.samples:
        raise ValueError(
            f"factors are of {factors.samples}-sample references; got references "
            f"{refs.shape[1]}, estimates {ests.shape[1]} samples"
        )
    d = correlations(refs, ests, factors.auto.shape[1])
    energy = np.einsum("jt,jt->j", ests, ests)
    return _criteria(factors, d, energy, np.arange(2))


def mixture_scores(factors: ReferenceFactors) -> dict[str, np.ndarray]:
    """Scores of the mixture ``(r0 + r1) / 2`` as the estimate of each source.

    Its correlations with the references are half sums of the references' own correlations,
    so no audio is needed: ``D_0[a] = (a0[a] + c[a]) / 2``, ``D_1[a] = (c[-a] + a1[a]) / 2``.
    """
    lags = factors.auto.shape[1]
    lag0 = lags - 1
    d0 = 0.5 * (factors.auto[0] + factors.cross[lag0:])
    d1 = 0.5 * (factors.cross[lag0::-1] + factors.auto[1])
    d = np.stack([np.stack([d0, d0], axis=1), np.stack([d1, d1], axis=1)])
    energy = 0.25 * (factors.auto[0, 0] + factors.auto[1, 0] + 2 * factors.cross[lag0])
    return _criteria(factors, d, np.full(2, energy), np.arange(2))
