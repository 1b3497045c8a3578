"""Bradley–Terry ratings fitted to the round robin's paired replicate results, with intervals.

Each replicate of each pair is one game: entrant i beats j when its primary KPI is better on
that seed (a tie is half a win each). The model says P(i beats j) = σ(θᵢ − θⱼ). We take the
maximum a posteriori θ under an independent N(0, ``PRIOR_SD``²) prior — with common random
numbers a clearly better model wins *every* replicate, and the plain maximum-likelihood estimate
would then be infinite — by Newton's method (the log-posterior is strictly concave). Scores are
reported relative to the champion (θ − θ_champion: the log-odds of beating it in a replicate).
Intervals are percentile bootstrap intervals over replicates: resampling whole replicates keeps
the correlation CRN creates between the games played on one seed.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

PRIOR_SD: Final = 4.0  # log-odds; wide: a 98%-vs-2% matchup is only ~1 SD out
BOOTSTRAP_RESAMPLES: Final = 200
_NEWTON_STEPS: Final = 100


def fit(wins: NDArray[np.float64], prior_sd: float = PRIOR_SD) -> NDArray[np.float64]:
    """MAP strengths θ from a k × k matrix of wins (``wins[i, j]`` = games i won against j)."""
    w = np.asarray(wins, dtype=np.float64)
    k = w.shape[0]
    games = w + w.T
    theta = np.zeros(k)
    precision = 1.0 / prior_sd**2
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
        grad = (w - games * p).sum(axis=1) - precision * theta
        curvature = games * p * (1.0 - p)
        hessian = curvature - np.diag(curvature.sum(axis=1) + precision)
        step = np.linalg.solve(hessian, grad)
        theta = theta - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta


def win_matrix(primary: NDArray[np.float64], higher_is_better: bool) -> NDArray[np.float64]:
    """Wins from a replicates × entrants matrix of primary-KPI values (ties: ½ each)."""
    x = primary if higher_is_better else -primary
    beats = (x[:, :, None] > x[:, None, :]).sum(axis=0).astype(np.float64)
    ties = (x[:, :, None] == x[:, None, :]).sum(axis=0).astype(np.float64)
    np.fill_diagonal(ties, 0.0)
    out: NDArray[np.float64] = beats + ties / 2.0
    return out


def rate(
    primary: NDArray[np.float64],
    higher_is_better: bool,
    champion: int,
    rng: np.random.Generator,
    confidence: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(score, lower, upper) per entrant, relative to the champion's strength."""
    theta = fit(win_matrix(primary, higher_is_better))
    n = primary.shape[0]
    boots = np.empty((BOOTSTRAP_RESAMPLES, primary.shape[1]))
    for b in range(BOOTSTRAP_RESAMPLES):
        picks = rng.integers(0, n, size=n)
        t = fit(win_matrix(primary[picks], higher_is_better))
        boots[b] = t - t[champion]
    alpha = 1.0 - confidence
    lower, upper = np.quantile(boots, [alpha / 2, 1 - alpha / 2], axis=0)
    return theta - theta[champion], lower, upper
