"""The qa agent: edge-case scenarios from the synthetic-data engine that every candidate must pass.

The source is a labelled-free sample of the twin's customers (features and segment); the
synthetic engine injects one edge case per scenario — cold start (the first rows have all-zero
features, new customers without history), a surge (a batch ten times the usual size), a
segment-mix drift, missing values (imputed with the source means, as serving does) and extreme
values. On each scenario a candidate must return one finite score in [0, 1] per row, and its
expected hit rate (against the twin's P(intent), on the rows the edge case touched) may not fall
more than ``TOLERANCE`` below the reference model's (the champion, else the model improved). The
first failing scenario vetoes the candidate: the championship reads the gate as an external
result. A predictor and an ONNX artifact (resolved: its bytes attached) are scored the same way,
each at its own decision rule (a predictor's thresholds; an ONNX graph carries its threshold, so
it acts at ``score >= 0.5`` as the twin does). Profiles have no scores to check and pass with
that said.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from twinloop.agents.protocol import AgentContext, Candidate, QaGate, ScenarioCheck
from twinloop.agents.twin import environment_of
from twinloop.replication.synthetic.edgecases import (
    ColdStart,
    ExtremeValues,
    MissingValues,
    SegmentMixShift,
)
from twinloop.replication.synthetic.generate import EdgeCase, SyntheticSpec, synthesize
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.groundtruth import intent_probability, predictor_features
from twinloop.sim.models import ModelSpec, PredictorModel, ScoredModel, load_predictor
from twinloop.strategy.models import Action

TOLERANCE = 0.05
ROWS = 2_000
SURGE_FACTOR = 10
COLD_FRACTION = 0.25


def _features(env: BusinessEnvironment) -> list[str]:
    return [f"x{i}" for i in range(env.n_features)]


def source_table(env: BusinessEnvironment, rows: int, seed: int) -> pa.Table:
    """Twin customers as a table: one column per feature and the segment name."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x0A]))
    shares = np.array([s.share for s in env.segments])
    segment = rng.choice(len(shares), size=rows, p=shares / shares.sum())
    means = np.array([s.feature_mean for s in env.segments], dtype=np.float64)
    stds = np.array([s.feature_std for s in env.segments], dtype=np.float64)
    x = means[segment] + stds[segment, None] * rng.standard_normal((rows, env.n_features))
    columns: dict[str, object] = {name: x[:, i] for i, name in enumerate(_features(env))}
    columns["segment"] = [env.segments[i].name for i in segment]
    return pa.table(columns)


def scenarios(env: BusinessEnvironment) -> dict[str, tuple[tuple[EdgeCase, ...], int, float]]:
    """Name → (edge cases, rows, share of leading rows judged; 1 = all)."""
    cols = tuple(_features(env))
    return {
        "cold_start": (
            (ColdStart(fraction=COLD_FRACTION, columns=cols, fill="zero"),),
            ROWS,
            COLD_FRACTION,
        ),
        "surge": ((), ROWS * SURGE_FACTOR, 1.0),
        "drift": ((SegmentMixShift(magnitude=0.3, column="segment", start=0.0),), ROWS, 1.0),
        "missing_values": ((MissingValues(rate=0.1, columns=cols),), ROWS, 1.0),
        "extreme_values": ((ExtremeValues(rate=0.02, columns=cols),), ROWS, 1.0),
    }


Scorer = Callable[[ModelSpec], NDArray[np.float64] | str]


def _matrix(env: BusinessEnvironment, table: pa.Table) -> NDArray[np.float64]:
    return np.column_stack(
        [
            np.asarray(table.column(c).to_numpy(zero_copy_only=False), dtype=float)
            for c in _features(env)
        ]
    )


def _scorer(
    env: BusinessEnvironment, shown: pa.Table, truth: pa.Table, means: NDArray[np.float64]
) -> Scorer:
    """Score a model on what it is shown; judge it against the customers' true intent.

    ``truth`` holds the same rows before the edge case: a cold-start customer still has its
    intent, the model just cannot see the history that reveals it.
    """
    names = [s.name for s in env.segments]
    x = _matrix(env, shown)
    x = np.where(np.isnan(x), means[None, :], x)  # serving imputes blanks with the source means
    seg = np.array([names.index(s) for s in shown.column("segment").to_pylist()], dtype=np.int64)
    p = intent_probability(env, _matrix(env, truth), seg)
    feats = predictor_features(env, x, seg)

    def score(model: ModelSpec) -> NDArray[np.float64] | str:
        assert isinstance(model, ScoredModel)
        try:
            predictor = load_predictor(model)
            check = getattr(predictor, "check_features", None)  # an ONNX graph's input width
            if check is not None:
                check(feats.shape[1], "model")
            s = np.asarray(predictor.predict(feats), dtype=np.float64).reshape(-1)
        except Exception as exc:  # a candidate that raises fails the scenario, it is not our crash
            return f"predict raised {type(exc).__name__}: {exc}"
        if s.size != len(seg) or not np.all(np.isfinite(s)) or s.min() < 0 or s.max() > 1:
            return f"invalid scores: {s.size} for {len(seg)} rows, finite={np.isfinite(s).all()}"
        act = s >= _thresholds(model, names)[seg]
        return np.where(act, p, 1.0 - p)

    return score


def _thresholds(model: ScoredModel, names: list[str]) -> NDArray[np.float64]:
    """Per-segment decision thresholds: a predictor's own; 0.5 for an ONNX graph, which folds
    its recipe's threshold into the score (``twinloop.improve.onnxexport.shift_threshold``)."""
    if isinstance(model, PredictorModel):
        return model.thresholds(names)
    return np.full(len(names), 0.5)


def _tables(
    source: pa.Table, cases: tuple[EdgeCase, ...], rows: int, seed: int
) -> tuple[pa.Table, pa.Table]:
    """(rows with the edge case, the same rows without it); a mix shift has no 'before'."""
    shown, _ = synthesize(
        source, SyntheticSpec(rows=rows, seed=seed, edge_cases=cases, keep_missing=False)
    )
    if any(isinstance(c, SegmentMixShift) for c in cases) or not cases:
        return shown, shown
    truth, _ = synthesize(source, SyntheticSpec(rows=rows, seed=seed, keep_missing=False))
    return shown, truth


def gate(candidate: Candidate, reference: ModelSpec, context: AgentContext) -> QaGate:
    """Run the candidate through every scenario; the first failure is the veto."""
    if not isinstance(candidate.model, ScoredModel):
        check = ScenarioCheck(
            scenario="all",
            passed=True,
            candidate_accuracy=None,
            reference_accuracy=None,
            detail="a profile has no scores to check",
        )
        return QaGate(candidate=candidate.name, passed=True, failed_scenario=None, checks=(check,))
    env = environment_of(context)
    source = source_table(env, ROWS, context.seed)
    means = np.array([float(np.mean(source.column(c).to_numpy())) for c in _features(env)])
    checks = []
    for i, (name, (cases, rows, judged)) in enumerate(scenarios(env).items()):
        shown, truth = _tables(source, cases, rows, context.seed + i)
        score = _scorer(env, shown, truth, means)
        n = max(1, round(judged * rows))
        mine = score(candidate.model)
        ref = score(reference) if isinstance(reference, ScoredModel) else None
        ref_acc = float(np.mean(ref[:n])) if isinstance(ref, np.ndarray) else None
        if isinstance(mine, str):
            checks.append(
                ScenarioCheck(
                    scenario=name,
                    passed=False,
                    candidate_accuracy=None,
                    reference_accuracy=ref_acc,
                    detail=mine,
                )
            )
            continue
        acc = float(np.mean(mine[:n]))
        ok = ref_acc is None or acc >= ref_acc - TOLERANCE
        shown = "none" if ref_acc is None else f"{ref_acc:.3f}"
        detail = f"expected hit rate {acc:.3f} vs reference {shown} on {n} rows"
        checks.append(
            ScenarioCheck(
                scenario=name,
                passed=ok,
                candidate_accuracy=acc,
                reference_accuracy=ref_acc,
                detail=detail,
            )
        )
    failed = next((c.scenario for c in checks if not c.passed), None)
    return QaGate(
        candidate=candidate.name,
        passed=failed is None,
        failed_scenario=failed,
        checks=tuple(checks),
    )


class QaAgent:
    """Gates the context's candidates (a veto, not a proposal): each comes back with its gate."""

    kind = "qa"

    def propose(self, action: Action, context: AgentContext) -> list[Candidate]:
        reference = context.champion or context.model
        return [
            c.model_copy(update={"gate": gate(c, reference, context)}) for c in context.candidates
        ]
