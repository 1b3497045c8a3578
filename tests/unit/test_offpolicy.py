"""Off-policy estimates on a logged bandit with a known true policy value: DR's interval covers
the truth in ≈95% of seeds, IPS is unbiased, closed forms hold, bad logs and policies are named."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from cluster.cli import main
from twinloop.errors import InvalidInput
from twinloop.offpolicy import (
    LinearPolicy,
    OffPolicyResult,
    OffPolicySettings,
    TablePolicy,
    evaluate_policy,
    logged_decisions,
)
from twinloop.offpolicy.policy import parse_policy

K, D, CONTEXTS = 4, 3, 50
ACTIONS = tuple(f"a{k}" for k in range(K))


class Bandit:
    """Contexts uniform over 50 fixed points, Bernoulli rewards, a softmax logging policy.

    Because the contexts are a known finite set, the target policy's value is exact:
    V = mean over contexts of Σ_a π(a|x) μ(x, a).
    """

    def __init__(self) -> None:
        rng = np.random.default_rng(np.random.SeedSequence(20261202))
        self.x = rng.normal(size=(CONTEXTS, D))
        self.theta = rng.normal(scale=0.8, size=(K, D))
        self.bias = rng.normal(scale=0.5, size=K)
        logging_scores = self.x @ rng.normal(size=(D, K))
        soft = np.exp(logging_scores - logging_scores.max(axis=1, keepdims=True))
        # 20% uniform exploration keeps every propensity >= 0.05.
        self.logging = 0.8 * soft / soft.sum(axis=1, keepdims=True) + 0.2 / K
        self.target = LinearPolicy(
            actions=ACTIONS,
            weights={a: {f"x{j}": float(self.theta[k, j]) for j in range(D)} for k, a in
                     enumerate(ACTIONS)},
            intercepts={a: float(self.bias[k]) for k, a in enumerate(ACTIONS)},
            temperature=0.5,
        )  # fmt: skip

    def mu(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.x @ self.theta.T + self.bias)))

    def true_value(self) -> float:
        scores = (self.x @ self.theta.T + self.bias) / 0.5
        pi = np.exp(scores - scores.max(axis=1, keepdims=True))
        pi /= pi.sum(axis=1, keepdims=True)
        return float((pi * self.mu()).sum(axis=1).mean())

    def logs(self, n: int, seed: int) -> pa.Table:
        rng = np.random.default_rng(np.random.SeedSequence([7, seed]))
        c = rng.integers(CONTEXTS, size=n)
        u = rng.random(n)
        a = (u[:, None] > np.cumsum(self.logging[c], axis=1)).sum(axis=1)
        reward = rng.random(n) < self.mu()[c, a]
        columns = {f"x{j}": self.x[c, j] for j in range(D)}
        return pa.table({
            **columns,
            "action": np.asarray(ACTIONS)[a],
            "propensity": self.logging[c, a],
            "reward": reward.astype(np.int64),
        })  # fmt: skip


@pytest.fixture(scope="module")
def bandit() -> Bandit:
    return Bandit()


@pytest.fixture(scope="module")
def runs(bandit: Bandit) -> list[OffPolicyResult]:
    """200 independent logs of 1,000 decisions, each estimated with its own seed."""
    return [
        evaluate_policy(
            logged_decisions(bandit.logs(1_000, seed)), bandit.target, OffPolicySettings(seed=seed)
        )
        for seed in range(200)
    ]


def by(result: OffPolicyResult, name: str) -> tuple[float, float, float]:
    e = next(e for e in result.estimates if e.estimator == name)
    return e.value, e.lower, e.upper


def test_dr_interval_covers_the_true_value_in_95_percent_of_seeds(
    bandit: Bandit, runs: list[OffPolicyResult]
) -> None:
    """Coverage of the 95% DR interval over 200 seeds is consistent with 0.95 (binomial)."""
    truth = bandit.true_value()
    covered = sum(lo <= truth <= hi for _, lo, hi in (by(r, "dr") for r in runs))
    assert stats.binomtest(covered, len(runs), 0.95).pvalue > 0.01, covered
    assert 0.90 <= covered / len(runs) <= 0.99


def test_ips_is_unbiased_and_dr_is_tighter(bandit: Bandit, runs: list[OffPolicyResult]) -> None:
    """The mean IPS estimate over seeds is the truth within 3 standard errors; DR's sd < IPS's."""
    truth = bandit.true_value()
    logged = np.mean([r.logged_value for r in runs])
    assert abs(logged - truth) > 0.05  # the target really differs from the logging policy
    for name in ("ips", "snips", "dr"):
        values = np.array([by(r, name)[0] for r in runs])
        se = values.std(ddof=1) / np.sqrt(values.size)
        assert abs(values.mean() - truth) < 3 * se, (name, values.mean(), truth, se)
    ips = np.array([by(r, "ips")[0] for r in runs])
    dr = np.array([by(r, "dr")[0] for r in runs])
    assert dr.std() < 0.8 * ips.std()
    covered = sum(lo <= truth <= hi for _, lo, hi in (by(r, "ips") for r in runs))
    assert 0.90 <= covered / len(runs) <= 0.99


def test_ips_and_snips_match_their_closed_forms() -> None:
    """Four decisions, a table policy: IPS = mean(w r), SNIPS = Σ w r / Σ w, by hand."""
    table = pa.table({
        "action": ["A", "B", "A", "B"],
        "propensity": [0.5, 0.5, 0.25, 0.75],
        "reward": [1.0, 0.0, 1.0, 1.0],
    })  # fmt: skip
    policy = TablePolicy(default={"A": 0.9, "B": 0.1})
    result = evaluate_policy(logged_decisions(table), policy, OffPolicySettings(folds=2))
    w = np.array([0.9 / 0.5, 0.1 / 0.5, 0.9 / 0.25, 0.1 / 0.75])
    r = np.array([1.0, 0.0, 1.0, 1.0])
    assert by(result, "ips")[0] == pytest.approx((w * r).mean(), rel=1e-12)
    assert by(result, "snips")[0] == pytest.approx((w * r).sum() / w.sum(), rel=1e-12)
    assert result.effective_sample_size == pytest.approx(w.sum() ** 2 / (w * w).sum())
    assert {n.code for n in result.notes} == {"few_decisions"}


def test_dr_is_the_exact_model_value_when_the_reward_is_linear() -> None:
    """Rewards exactly linear per action, no ridge: q̂ is exact and DR = Σ π q on every context."""
    rng = np.random.default_rng(3)
    n = 400
    x = rng.normal(size=n)
    a = rng.integers(2, size=n)
    reward = np.where(a == 0, 1.0 + 2.0 * x, -0.5 + 0.5 * x)
    table = pa.table({"x": x, "action": np.where(a == 0, "A", "B"), "propensity": np.full(n, 0.5),
                      "reward": reward})  # fmt: skip
    policy = LinearPolicy(actions=("A", "B"), weights={"A": {"x": 1.0}}, temperature=1.0)
    result = evaluate_policy(logged_decisions(table), policy, OffPolicySettings(ridge=0.0))
    pi_a = 1.0 / (1.0 + np.exp(-x))
    exact = (pi_a * (1.0 + 2.0 * x) + (1 - pi_a) * (-0.5 + 0.5 * x)).mean()
    assert by(result, "dr")[0] == pytest.approx(exact, abs=1e-9)


def test_same_seed_same_bytes(bandit: Bandit) -> None:
    """The cross-fitting folds come from the seed: the same seed gives identical results."""
    logs = logged_decisions(bandit.logs(500, 1))
    one = evaluate_policy(logs, bandit.target, OffPolicySettings(seed=4))
    two = evaluate_policy(logs, bandit.target, OffPolicySettings(seed=4))
    assert one.model_dump_json() == two.model_dump_json()


def test_probability_on_unlogged_actions_is_a_note() -> None:
    """A target that puts 30% on an action never logged gets an unsupported_action note."""
    table = pa.table({"action": ["A", "B"] * 100, "propensity": [0.5] * 200,
                      "reward": [1.0, 0.0] * 100})  # fmt: skip
    policy = TablePolicy(default={"A": 0.5, "B": 0.2, "C": 0.3})
    result = evaluate_policy(logged_decisions(table), policy)
    assert result.actions == ("A", "B", "C")
    note = next(n for n in result.notes if n.code == "unsupported_action")
    assert "30.0%" in note.message and "(C)" in note.message


def _table(**changes: object) -> pa.Table:
    columns: dict[str, object] = {"x": [0.1, 0.2, 0.3], "action": ["A", "B", "A"],
                                  "propensity": [0.5, 0.5, 0.5], "reward": [1, 0, 1]}  # fmt: skip
    columns.update(changes)
    return pa.table({k: v for k, v in columns.items() if v is not None})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (_table(propensity=None), r"propensity: column 'propensity' not found"),
        (_table(propensity=[0.5, 0.0, 0.5]), r"propensity: column 'propensity' row 1: 0 is not"),
        (_table(propensity=[0.5, 1.5, 0.5]), r"row 1: 1.5 is not in \(0, 1\]"),
        (_table(reward=["a", "b", "c"]), r"reward: column 'reward' is string, not numeric"),
        (_table(reward=[1.0, float("nan"), 1.0]), r"reward: column 'reward' row 1: nan"),
        (_table(action=["A", None, "B"]), r"action: column 'action' row 1: missing action"),
        (_table(x=[0.1, float("inf"), 0.0]), r"features.x: column 'x' row 1"),
    ],
)
def test_bad_logs_name_the_column(table: pa.Table, message: str) -> None:
    """Every check names the column (and the first bad row)."""
    with pytest.raises(InvalidInput, match=message):
        logged_decisions(table)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"policy": {"kind": "table", "default": {"A": 0.5, "B": 0.4}}}, r"sum to 0.9, not 1"),
        ({"policy": {"kind": "table", "rows": {"x": {"A": 1.0}}}}, r"rows need 'by'"),
        (
            {"policy": {"kind": "linear", "actions": ["A"], "weights": {"Z": {}}}},
            r"weights: actions \['Z'\] are not in actions",
        ),
        ({"policy": {"kind": "neural"}}, r"^policy: "),
        ({"policy": {"kind": "table", "default": {"A": 1}}, "code": "x"}, r"^code: "),
    ],
)
def test_bad_policies_name_the_field(policy: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_policy(policy)


def test_policy_lookups_name_the_column() -> None:
    """A table keyed by a missing column, or a linear weight on a non-feature, is named."""
    logs = logged_decisions(_table())
    keyed = TablePolicy(by="country", rows={"DE": {"A": 1.0}})
    with pytest.raises(InvalidInput, match=r"policy.by: column 'country' not found"):
        evaluate_policy(logs, keyed)
    linear = LinearPolicy(actions=("A", "B"), weights={"A": {"age": 1.0}})
    with pytest.raises(InvalidInput, match=r"policy.weights.age: not a numeric feature"):
        evaluate_policy(logs, linear)
    no_row = TablePolicy(by="action", rows={"A": {"A": 1.0}})
    with pytest.raises(InvalidInput, match=r"no row for action='B' and no default"):
        evaluate_policy(logs, no_row)


def test_cli_prints_the_three_estimates(bandit: Bandit, tmp_path: Path, capsys) -> None:
    """twinloop offpolicy LOGS --policy P: text with IPS/SNIPS/DR, --json is the result model."""
    logs = tmp_path / "logs.parquet"
    pq.write_table(bandit.logs(2_000, 9), logs)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"name": "new-ranker", "policy": bandit.target.model_dump()}))
    assert main(["offpolicy", str(logs), "--policy", str(policy)]) == 0
    out = capsys.readouterr().out
    assert "policy 'new-ranker' on 2,000 logged decisions (4 actions" in out
    assert [line.split()[0] for line in out.splitlines()[2:5]] == ["ips", "snips", "dr"]
    assert main(["offpolicy", str(logs), "--policy", str(policy), "--json", "--seed", "3"]) == 0
    result = OffPolicyResult.model_validate_json(capsys.readouterr().out)
    assert result.seed == 3 and result.n == 2_000
    assert main(["offpolicy", str(logs), "--policy", str(policy), "--reward-column", "y"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("twinloop offpolicy: error: reward: column 'y' not found")
    assert main(["offpolicy", str(logs), "--policy", str(policy), "--level", "1.5"]) == 2
    assert "level:" in capsys.readouterr().err


EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "offpolicy"


@pytest.mark.parametrize(
    ("name", "extra"),
    [("new-ranker", ["--features", "age,tenure_years,mobile"]), ("sports-on-mobile", [])],
)
def test_docs_examples_print_their_stored_output(
    name: str, extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """make_logs.py's logs and the example policies print exactly docs/examples/offpolicy/*.out."""
    logs = tmp_path / "clicks.parquet"
    runpy.run_path(str(EXAMPLES / "make_logs.py"), run_name="not_main")["main"](logs)
    made = capsys.readouterr().out
    assert "true click rates: new-ranker 0.2092, sports-on-mobile 0.3281" in made
    args = ["offpolicy", str(logs), "--policy", str(EXAMPLES / f"{name}.json"),
            "--action-column", "module", "--reward-column", "clicked", *extra]  # fmt: skip
    assert main(args) == 0
    assert capsys.readouterr().out == (EXAMPLES / f"{name}.out").read_text()
