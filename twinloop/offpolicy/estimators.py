"""Off-policy value estimates: inverse propensity (IPS), self-normalised IPS and doubly robust.

With logged decisions (x_i, a_i, p_i = μ(a_i|x_i), r_i) and a target policy π, the importance
weight is w_i = π(a_i|x_i) / p_i and

* **IPS**    V̂ = (1/n) Σ w_i r_i — unbiased whenever the logging policy gave every action π
  takes a positive probability; its variance grows with the weights;
* **SNIPS**  V̂ = Σ w_i r_i / Σ w_i — a ratio estimator (slightly biased, consistent) that is
  invariant to a constant shift of the rewards and much steadier when weights are uneven;
* **DR**     V̂ = (1/n) Σ [Σ_a π(a|x_i) q̂(x_i,a) + w_i (r_i − q̂(x_i,a_i))] — a reward model
  q̂ as the baseline, corrected by the weighted residual: unbiased if *either* the propensities
  or the model are right, and lower variance than IPS when the model is any good.

q̂ is a ridge regression of the reward on the standardised features per action, **cross-fitted**:
the decisions are split into ``folds`` random folds (seeded) and each fold's q̂ is fitted on the
other folds, so a decision's own reward never enters its baseline and the DR terms stay
independent enough for the plain variance formula. Intervals are normal: IPS and DR from the
sample variance of their per-decision terms, SNIPS by the delta method.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

from twinloop.errors import InvalidInput
from twinloop.offpolicy.logs import LoggedDecisions
from twinloop.offpolicy.models import (
    Estimate,
    Estimator,
    LinearPolicy,
    OffPolicyNote,
    OffPolicyResult,
    OffPolicySettings,
    TablePolicy,
)
from twinloop.offpolicy.policy import action_probabilities, action_universe

Floats = npt.NDArray[np.float64]
LOW_ESS_SHARE = 0.1  # an effective sample below this share of n is worth a note
FEW_DECISIONS = 100  # below this many decisions a normal interval is rough


def evaluate_policy(
    logs: LoggedDecisions,
    policy: TablePolicy | LinearPolicy,
    settings: OffPolicySettings | None = None,
    name: str = "target",
) -> OffPolicyResult:
    """IPS, SNIPS and DR estimates of ``policy``'s mean reward on the logged contexts."""
    settings = settings or OffPolicySettings()
    n = len(logs)
    if n < 2:
        raise InvalidInput("logs", f"{n} decision: at least 2 are needed for an interval")
    actions = action_universe(logs, policy)
    pi = action_probabilities(logs, policy, actions)
    rows = np.arange(n)
    w = pi[rows, logs.action] / logs.propensity
    r = logs.reward
    q = cross_fitted_rewards(logs, len(actions), settings)
    z = float(stats.norm.ppf(0.5 + settings.level / 2))
    estimates = (
        _mean_estimate("ips", w * r, z),
        _snips(w, r, z),
        _mean_estimate("dr", (pi * q).sum(axis=1) + w * (r - q[rows, logs.action]), z),
    )
    ess = float(w.sum() ** 2 / (w * w).sum()) if (w > 0).any() else 0.0
    return OffPolicyResult(
        policy=name,
        n=n,
        actions=actions,
        logged_value=float(r.mean()),
        estimates=estimates,
        effective_sample_size=ess,
        max_weight=float(w.max()),
        notes=tuple(_notes(logs, pi, actions, ess)),
        settings=settings,
        seed=settings.seed,
    )


def _mean_estimate(estimator: Estimator, terms: Floats, z: float) -> Estimate:
    value = float(terms.mean())
    se = float(terms.std(ddof=1) / np.sqrt(terms.shape[0]))
    return Estimate(
        estimator=estimator, value=value, std_error=se, lower=value - z * se, upper=value + z * se
    )


def _snips(w: Floats, r: Floats, z: float) -> Estimate:
    total = float(w.sum())
    if total == 0.0:  # the target never takes a logged action: nothing to weight
        return Estimate(estimator="snips", value=0.0, std_error=0.0, lower=0.0, upper=0.0)
    value = float((w * r).sum() / total)
    # Delta method for a ratio of means: Var ≈ Σ w_i² (r_i − V̂)² / (Σ w_i)².
    se = float(np.sqrt((w * w * (r - value) ** 2).sum()) / total)
    return Estimate(
        estimator="snips", value=value, std_error=se, lower=value - z * se, upper=value + z * se
    )


def cross_fitted_rewards(
    logs: LoggedDecisions, n_actions: int, settings: OffPolicySettings
) -> Floats:
    """q̂(x_i, a) for every decision and action, each row predicted by folds that exclude it."""
    n = len(logs)
    folds = min(settings.folds, n)
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed))
    fold = np.empty(n, dtype=np.int64)
    fold[rng.permutation(n)] = np.arange(n) % folds
    q = np.empty((n, n_actions))
    for k in range(folds):
        held, train = fold == k, fold != k
        q[held] = _fit_predict(logs, train, held, n_actions, settings.ridge)
    return q


def _fit_predict(
    logs: LoggedDecisions,
    train: npt.NDArray[np.bool_],
    held: npt.NDArray[np.bool_],
    n_actions: int,
    ridge: float,
) -> Floats:
    x_train, x_held = logs.features[train], logs.features[held]
    mean = x_train.mean(axis=0) if x_train.shape[0] else np.zeros(x_train.shape[1])
    scale = x_train.std(axis=0) if x_train.shape[0] else np.ones(x_train.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    design_train = np.column_stack([np.ones(x_train.shape[0]), (x_train - mean) / scale])
    design_held = np.column_stack([np.ones(x_held.shape[0]), (x_held - mean) / scale])
    penalty = ridge * np.eye(design_train.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    r_train, a_train = logs.reward[train], logs.action[train]
    fallback = float(r_train.mean()) if r_train.size else 0.0
    out = np.full((x_held.shape[0], n_actions), fallback)
    for a in range(n_actions):
        mine = a_train == a
        if mine.sum() < 2:
            continue  # an action (almost) never logged here: the overall mean reward
        d = design_train[mine]
        beta = np.linalg.lstsq(d.T @ d + penalty, d.T @ r_train[mine], rcond=None)[0]
        out[:, a] = design_held @ beta
    return out


def _notes(
    logs: LoggedDecisions, pi: Floats, actions: tuple[str, ...], ess: float
) -> list[OffPolicyNote]:
    n = len(logs)
    notes = []
    unlogged = [k for k, a in enumerate(actions) if a not in logs.actions]
    mass = float(pi[:, unlogged].sum(axis=1).mean()) if unlogged else 0.0
    if mass > 0.0:
        names = [actions[k] for k in unlogged]
        notes.append(
            OffPolicyNote(
                code="unsupported_action",
                message=f"{mass:.1%} of the target policy's probability is on actions the logs "
                f"never took ({', '.join(names)}): IPS and SNIPS cannot see them (biased); DR "
                "extrapolates the reward model there",
            )
        )
    if ess < LOW_ESS_SHARE * n:
        notes.append(
            OffPolicyNote(
                code="low_effective_sample_size",
                message=f"the importance weights are uneven: the estimates rest on about "
                f"{ess:,.0f} of {n:,} decisions (effective sample size); prefer DR or SNIPS",
            )
        )
    if n < FEW_DECISIONS:
        notes.append(
            OffPolicyNote(
                code="few_decisions",
                message=f"{n} decisions: the normal intervals are rough below {FEW_DECISIONS}",
            )
        )
    return notes
