"""Per-leaf anomaly evidence: a bounded deviation score and its variance under "no anomaly".

Every leaf gets the deviation score of Squeeze/RiskLoc, ``d = 2 (y - mu) / (y + mu)`` (``y``
actual, ``mu`` expected; bounded in ``[-2, 2]``, so a vanished leaf scores 2 rather than
infinity), and a null variance saying how far ``d`` strays from 0 by noise alone. The variance
has two components, fitted to the leaves of the case itself:

    s² = floor² + dispersion · u

* ``floor`` is a relative error every forecast has whatever the leaf's size (a forecast that is
  ~1% off everywhere);
* ``u`` is the leaf's counting variance: Poisson-like ``1 / m`` for additive KPIs (``m = (y +
  mu) / 2``, small leaves are noisier), and for derived (ratio) KPIs the binomial
  ``(1 - r)/r · (1/n_actual + 1/n_expected)`` of a rate ``r`` observed over ``n`` units (or
  Poisson ``1/(r·n)`` terms when the numerator can exceed the denominator). Both the observed
  rate and its forecast are estimates, hence the two ``1/n`` terms.

``floor`` and ``dispersion`` are fitted by re-weighted least squares of ``d²`` on the leaves
within ``TRIM_Z`` standard deviations (:func:`fit_noise`), starting from the median absolute
deviation (additive) or plain binomial noise (derived), so the anomalous minority — what we are
looking for — cannot inflate the noise. A derived leaf's expected rate
is shrunk toward the total's by ``prior_units`` pseudo-units, so a leaf without history falls
back to the total's rate. Leaves whose actual and expected are both zero carry no evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twinloop.analysis.localizer.leaves import FloatArray, LeafTable
from twinloop.analysis.localizer.models import LocalizerSettings

BoolArray = npt.NDArray[np.bool_]

#: Standardised deviations beyond this are censored while fitting the noise.
TRIM_Z = 4.0
#: Smallest noise variance allowed: a perfect forecast must not make the evidence infinite.
MIN_VARIANCE = 1e-12
_ROUNDS = 30
_MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class LeafEvidence:
    """Per-leaf deviation ``d``, null variance ``s2``, actual ``y`` and expected ``mu``."""

    d: FloatArray
    s2: FloatArray
    y: FloatArray
    mu: FloatArray
    informative: BoolArray
    noise: str
    floor: float
    dispersion: float


def deviation_score(y: FloatArray, mu: FloatArray) -> FloatArray:
    """``2 (y - mu) / (y + mu)``, 0 where both are 0 (positive when above expectation)."""
    total = y + mu
    out = np.zeros_like(total)
    np.divide(2.0 * (y - mu), total, out=out, where=total > 0)
    return out


def fit_noise(d: FloatArray, u: FloatArray, start: tuple[float, float]) -> tuple[float, float]:
    """``(floor², dispersion)`` of ``d ~ N(0, a + b·u)`` on the bulk of the leaves.

    Iteratively re-weighted least squares of ``d²`` on ``[1, u]`` (weights ``1/s⁴``, as
    ``Var(d²) = 2 s⁴``) over the leaves within ``TRIM_Z`` current standard deviations, with
    both components kept non-negative. A mean of squares, not a median: count data put many
    leaves at exactly zero deviation, which drags median-based scales toward zero; the trimmed
    mean of squares stays unbiased (it is Pearson's over-dispersion estimator, outliers off).
    """
    a, b = start
    if d.size == 0:
        return max(a, MIN_VARIANCE), b
    d2 = d**2
    for _ in range(_ROUNDS):
        s2 = np.maximum(a + b * u, MIN_VARIANCE)
        bulk = d2 < TRIM_Z**2 * s2
        if int(bulk.sum()) < 3:
            break
        w = 1.0 / s2[bulk] ** 2
        y, x = d2[bulk], u[bulk]
        new_a, new_b = _nonnegative_wls(y, x, w)
        if new_a + new_b <= 0:
            break
        done = abs(new_a - a) <= 1e-4 * (a + 1e-300) and abs(new_b - b) <= 1e-4 * (b + 1e-300)
        a, b = new_a, new_b
        if done:
            break
    return max(a, 0.0), max(b, 0.0)


def _nonnegative_wls(y: FloatArray, x: FloatArray, w: FloatArray) -> tuple[float, float]:
    """Weighted least squares of ``y ≈ a + b·x`` with ``a, b >= 0`` (2 × 2 normal equations)."""
    # Element-wise products and sums, not BLAS dot products: on a shared machine a threaded
    # BLAS call can stall for milliseconds waiting for cores, for a microsecond of work.
    sw, sx, sy = float(w.sum()), float((w * x).sum()), float((w * y).sum())
    sxx, sxy = float((w * x * x).sum()), float((w * x * y).sum())
    det = sw * sxx - sx * sx
    if det > 0:
        a = (sxx * sy - sx * sxy) / det
        b = (sw * sxy - sx * sy) / det
        if a >= 0 and b >= 0:
            return a, b
    only_a = (sy / sw, 0.0)
    only_b = (0.0, sxy / sxx if sxx > 0 else 0.0)

    def sse(p: tuple[float, float]) -> float:
        r = y - p[0] - p[1] * x
        return float((w * r * r).sum())

    return min((only_a, only_b), key=sse) if only_b[1] >= 0 else only_a


def leaf_evidence(leaves: LeafTable, settings: LocalizerSettings) -> LeafEvidence:
    """The deviation score and null variance of every leaf (see the module docstring)."""
    if leaves.kind == "additive":
        y, mu = leaves.value("actual"), leaves.value("expected")
        informative = (y + mu) > 0
        unit_var = np.zeros_like(y)
        np.divide(2.0, y + mu, out=unit_var, where=informative)  # 1 / m, m = (y + mu) / 2
        name = "relative+poisson"
    else:
        y, mu, unit_var, name = _derived_parts(leaves, settings)
        informative = (leaves.value("denominator_actual") > 0) & ((y + mu) > 0)
    d = deviation_score(y, mu)
    d_in, u_in = d[informative], unit_var[informative]
    if settings.noise == "relative":
        u_in = np.zeros_like(u_in)
    if leaves.kind == "derived":
        start = (0.0, 1.0)  # plain binomial (or Poisson) noise
    else:
        mad = _MAD_TO_SD * float(np.median(np.abs(d_in))) if d_in.size else 0.0
        # More than half the leaves exactly on forecast: the data claim no noise, and any
        # deviation is evidence (the fit then stays at the smallest variance allowed).
        start = (mad**2, 0.0)
    floor2, dispersion = fit_noise(d_in, u_in, start)
    s2 = np.where(informative, np.maximum(floor2 + dispersion * unit_var, MIN_VARIANCE), np.inf)
    return LeafEvidence(d, s2, y, mu, informative, name, float(np.sqrt(floor2)), dispersion)


def _derived_parts(
    leaves: LeafTable, settings: LocalizerSettings
) -> tuple[FloatArray, FloatArray, FloatArray, str]:
    """Actual numerator, expected numerator at the actual volume, and counting variance."""
    na, nf = leaves.value("numerator_actual"), leaves.value("numerator_expected")
    da, df = leaves.value("denominator_actual"), leaves.value("denominator_expected")
    k = settings.prior_units
    total_f, total_a = float(df.sum()), float(da.sum())
    if total_f > 0:
        rate0 = float(nf.sum()) / total_f
    else:
        rate0 = float(na.sum()) / total_a if total_a > 0 else 0.0
    # A leaf seen in few units has a poor forecast of its own; one with no history falls back
    # to the total's rate.
    den_f = df + k
    rate_f = np.full_like(nf, rate0)
    np.divide(nf + k * rate0, den_f, out=rate_f, where=den_f > 0)
    mu = da * rate_f
    pooled_den = da + df + k
    rate_pool = np.full_like(nf, rate0)
    np.divide(na + nf + k * rate0, pooled_den, out=rate_pool, where=pooled_den > 0)
    inv_n = np.zeros_like(da)
    np.divide(1.0, da, out=inv_n, where=da > 0)
    inv_n += np.divide(1.0, den_f, out=np.zeros_like(den_f), where=den_f > 0)
    # Half a unit: a rate of exactly 0 or 1 is still an estimate with some noise.
    floor = 0.5 / np.maximum(pooled_den, 1.0)
    r = np.clip(rate_pool, floor, None)
    if bool(np.all(na <= da * (1 + 1e-9)) and np.all(nf <= df * (1 + 1e-9))):
        return na, mu, np.clip(1.0 - rate_pool, floor, None) / r * inv_n, "floor+binomial"
    return na, mu, inv_n / r, "floor+poisson"
