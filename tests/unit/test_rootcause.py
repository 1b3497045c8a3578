"""Root-cause localization: planted causes recovered, the benchmark's scoring rule, real cases,
A/B and history builders, and bad input named by field."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from bench.rootcause_scoring import (
    CaseScore,
    canonical_element,
    micro_f1,
    parse_set,
    score_case,
)
from twinloop.analysis.localizer.leaves import LeafTable
from twinloop.analysis.localizer.localize import localize
from twinloop.analysis.localizer.models import LocalizerSettings, RootCauseResult
from twinloop.analysis.localizer.sources import (
    ab_leaf_table,
    leaf_table_from_arrow,
    leaf_table_from_history,
    read_leaf_table,
    read_rs_case,
)
from twinloop.errors import InvalidInput

CARDS = {"a": 5, "b": 8, "c": 6, "d": 4}


def _grid(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every combination of four dimensions (960 leaves) with lognormal expected sizes."""
    combos = list(itertools.product(*(range(n) for n in CARDS.values())))
    codes = np.array(combos)
    dims = {name: np.array([f"{name}{v}" for v in codes[:, j]]) for j, name in enumerate(CARDS)}
    rng = np.random.default_rng(seed)
    return dims, rng.lognormal(mean=4.0, sigma=1.0, size=len(combos))


def _mask(dims: dict[str, np.ndarray], element: dict[str, str]) -> np.ndarray:
    mask = np.ones(len(next(iter(dims.values()))), dtype=bool)
    for name, value in element.items():
        mask &= dims[name] == value
    return mask


def _additive_case(seed: int, causes: list[dict[str, str]], drop: float) -> LeafTable:
    dims, expected = _grid(seed)
    rng = np.random.default_rng(seed + 1)
    actual = expected * (1.0 + rng.normal(0.0, 0.02, expected.shape[0]))  # 2% forecast noise
    for cause in causes:
        actual[_mask(dims, cause)] *= 1.0 - drop
    return LeafTable.additive(dims, actual, expected)


def _labels(result: RootCauseResult) -> set[str]:
    return {e.label for e in result.elements}


def test_planted_additive_two_dimensional_cause_is_recovered() -> None:
    """A 40% drop in {a=a1, c=c2} under 2% noise comes back as exactly that element."""
    leaves = _additive_case(7, [{"a": "a1", "c": "c2"}], drop=0.4)
    result = localize(leaves)
    assert _labels(result) == {"a=a1&c=c2"}
    top = result.elements[0]
    assert top.layer == 2
    assert top.relative_change == pytest.approx(-0.4, abs=0.02)
    assert top.explanatory_power == pytest.approx(1.0, abs=0.15)
    assert 0.5 < top.confidence <= 1.0


def test_planted_additive_causes_in_different_cuboids_are_all_recovered() -> None:
    """Two causes sharing dimension a (one 1-D, one 3-D) are both found, nothing else."""
    causes = [{"b": "b3"}, {"a": "a4", "c": "c0", "d": "d2"}]
    result = localize(_additive_case(11, causes, drop=0.6))
    assert _labels(result) == {"b=b3", "a=a4&c=c0&d=d2"}


def test_two_anomalous_children_of_a_normal_parent_are_reported_not_the_parent() -> None:
    """{a2,b1} and {a2,b5} moved while the rest of a2 did not: the children, not a=a2."""
    causes = [{"a": "a2", "b": "b1"}, {"a": "a2", "b": "b5"}]
    result = localize(_additive_case(3, causes, drop=0.5))
    assert _labels(result) == {"a=a2&b=b1", "a=a2&b=b5"}


def test_no_anomaly_gives_no_element() -> None:
    """Pure forecast noise explains itself: the localizer names nothing."""
    result = localize(_additive_case(5, [], drop=0.0))
    assert result.elements == []
    assert result.explained_share == 0.0


def test_planted_derived_rate_drop_is_recovered() -> None:
    """A conversion rate falling from ~10% to ~6% in {b=b2, d=d1} is found on binomial data."""
    dims, visits_expected = _grid(21)
    rng = np.random.default_rng(22)
    rate = rng.uniform(0.08, 0.12, visits_expected.shape[0])
    visits = rng.poisson(visits_expected * 10).astype(float)
    cause = _mask(dims, {"b": "b2", "d": "d1"})
    conversions = rng.binomial(visits.astype(int), np.where(cause, rate * 0.6, rate)).astype(float)
    history_visits = rng.poisson(visits_expected * 10).astype(float)
    history_conv = rng.binomial(history_visits.astype(int), rate).astype(float)
    leaves = LeafTable.derived(dims, conversions, history_conv, visits, history_visits)
    result = localize(leaves)
    assert _labels(result) == {"b=b2&d=d1"}
    top = result.elements[0]
    assert top.actual < top.expected  # the element's rate fell
    assert top.numerator_actual == pytest.approx(float(conversions[cause].sum()))
    assert top.denominator_actual == pytest.approx(float(visits[cause].sum()))


def test_a_table_on_forecast_except_one_leaf_names_that_leaf() -> None:
    """Most leaves exactly on forecast (no noise to fit): the one leaf that moved is named."""
    dims, expected = _grid(2)
    actual = expected.copy()
    actual[17] *= 0.5
    result = localize(LeafTable.additive(dims, actual, expected))
    named = {d: str(dims[d][17]) for d in CARDS}
    assert _labels(result) == {"&".join(f"{k}={v}" for k, v in sorted(named.items()))}


def test_direction_up_ignores_a_drop() -> None:
    """Asking only for rises finds nothing in a case whose only anomaly is a drop."""
    leaves = _additive_case(7, [{"a": "a1", "c": "c2"}], drop=0.4)
    assert localize(leaves, LocalizerSettings(direction="up")).elements == []
    assert _labels(localize(leaves, LocalizerSettings(direction="down"))) == {"a=a1&c=c2"}


def test_same_input_gives_the_same_result() -> None:
    """The search is deterministic: two runs agree element by element and number by number."""
    leaves = _additive_case(13, [{"d": "d3"}], drop=0.3)
    first, second = localize(leaves), localize(leaves)
    assert first.model_dump(exclude={"runtime_s"}) == second.model_dump(exclude={"runtime_s"})


def test_result_round_trips_through_json() -> None:
    """The result model (with its settings) survives JSON, as the CLI's --json prints it."""
    result = localize(_additive_case(7, [{"a": "a1", "c": "c2"}], drop=0.4))
    again = RootCauseResult.model_validate(json.loads(result.model_dump_json()))
    assert again == result
    assert again.settings.significance == LocalizerSettings().significance


# --- scoring -----------------------------------------------------------------------------


def test_canonical_element_sorts_pairs_by_attribute_and_drops_duplicates() -> None:
    """``c=c7&a=a4&a=a4`` is the element ``a=a4&c=c7``."""
    assert canonical_element("c=c7&a=a4&a=a4") == "a=a4&c=c7"
    assert parse_set("b=b1;a=a4&b=b26") == {"b=b1", "a=a4&b=b26"}


def test_scorer_gives_no_partial_credit() -> None:
    """Predicting the parent of a true element is one false positive and one false negative."""
    assert score_case(["a=a4"], "a=a4&b=b26") == CaseScore(tp=0, fp=1, fn=1)
    assert score_case(["b=b26&a=a4", "a=a4&b=b26"], "a=a4&b=b26") == CaseScore(tp=1, fp=0, fn=0)
    assert score_case([], "a=a1;b=b2") == CaseScore(tp=0, fp=0, fn=2)


def test_micro_f1_sums_counts_before_dividing() -> None:
    """Two cases (TP 1, FP 1, FN 0) and (TP 0, FP 0, FN 2): F1 = 2/(2+1+2) = 0.4."""
    group = micro_f1([CaseScore(tp=1, fp=1, fn=0), CaseScore(tp=0, fp=0, fn=2)])
    assert group.f1 == pytest.approx(0.4)
    assert group.precision == pytest.approx(0.5)
    assert group.recall == pytest.approx(1 / 3)


# --- builders ----------------------------------------------------------------------------


def test_ab_leaf_table_expects_control_rate_times_treatment_units() -> None:
    """Leaf x: control mean 2.0 per unit, 3 treatment units → expected 6; y has no control."""
    data = {
        "arm": np.array(["c", "c", "t", "t", "t", "c", "t"]),
        "seg": np.array(["x", "x", "x", "x", "x", "z", "y"]),
        "revenue": np.array([1.0, 3.0, 1.0, 1.0, 1.0, 4.0, 5.0]),
    }
    leaves = ab_leaf_table(
        data,
        variant="arm",
        dims=["seg"],
        metric="revenue",
        control="c",
        treatment="t",
        prior_units=0.0,
    )
    assert leaves.labels == (("x", "y"),)  # z has no treatment unit: no treatment leaf
    np.testing.assert_allclose(leaves.value("actual"), [3.0, 5.0])
    overall = (1.0 + 3.0 + 4.0) / 3.0
    np.testing.assert_allclose(leaves.value("expected"), [6.0, overall])


def test_ab_leaf_table_finds_the_segment_where_treatment_loses() -> None:
    """Per-unit A/B data where treatment converts 30% worse only on mobile+DE: that is found."""
    rng = np.random.default_rng(5)
    n = 400_000  # ~17k treatment units in the segment: a 30% loss is then unmistakable
    device = rng.choice(["desktop", "mobile", "tablet"], n)
    country = rng.choice(["DE", "FR", "US", "UK"], n)
    arm = rng.choice(["control", "treatment"], n)
    base = np.where(device == "mobile", 0.08, 0.12)
    hit = (arm == "treatment") & (device == "mobile") & (country == "DE")
    converted = rng.random(n) < np.where(hit, base * 0.7, base)
    table = pa.table(
        {
            "arm": arm,
            "device": device,
            "country": country,
            "converted": converted.astype(float),
            "visits": np.ones(n),
        }
    )
    leaves = ab_leaf_table(
        table,
        variant="arm",
        dims=["device", "country"],
        metric="converted",
        control="control",
        treatment="treatment",
        denominator="visits",
    )
    assert leaves.kind == "derived"
    assert _labels(localize(leaves)) == {"country=DE&device=mobile"}


def test_history_builder_averages_the_periods_each_leaf_appears_in() -> None:
    """Leaf g1 seen twice before t (4 and 6 units) expects 5; g2 never seen expects 0."""
    table = pa.table(
        {
            "min": [0, 60, 120, 120],
            "g": ["g1", "g1", "g1", "g2"],
        }
    )
    num = np.array([2.0, 3.0, 1.0, 7.0])
    den = np.array([4.0, 6.0, 5.0, 8.0])
    leaves = leaf_table_from_history(
        table, ["g"], time="min", at=120, history=4, step=60, numerator=num, denominator=den
    )
    np.testing.assert_allclose(leaves.value("numerator_expected"), [2.5, 0.0])
    np.testing.assert_allclose(leaves.value("denominator_expected"), [5.0, 0.0])
    np.testing.assert_allclose(leaves.value("denominator_actual"), [5.0, 8.0])


def test_repeated_combinations_are_summed_into_one_leaf() -> None:
    """Two rows for a=x are one leaf with their sums."""
    leaves = LeafTable.additive({"a": ["x", "x", "y"]}, [1.0, 2.0, 5.0], [1.0, 1.0, 4.0])
    assert len(leaves) == 2
    np.testing.assert_allclose(leaves.value("actual"), [3.0, 5.0])


def test_read_leaf_table_reads_gzip_csv_with_string_dimensions(tmp_path: Path) -> None:
    """A .csv.gz export with integer-looking values keeps them as strings."""
    path = tmp_path / "case.csv.gz"
    table = pa.table({"real": [1.0, 2.0], "predict": [1.0, 3.0], "p2p": [0, 1]})
    with pa.CompressedOutputStream(str(path), "gzip") as out:
        pacsv.write_csv(table, out)
    leaves = read_leaf_table(path, ["p2p"], actual="real", expected="predict")
    assert leaves.labels == (("0", "1"),)


# --- bad input ---------------------------------------------------------------------------


def test_missing_column_is_named() -> None:
    """A dimension or value column that is not in the table names itself."""
    table = pa.table({"a": ["x"], "real": [1.0], "predict": [1.0]})
    with pytest.raises(InvalidInput, match="column 'b' not found") as err:
        leaf_table_from_arrow(table, ["a", "b"], actual="real", expected="predict")
    assert err.value.field == "dims.b"
    with pytest.raises(InvalidInput, match="column 'forecast' not found") as err:
        leaf_table_from_arrow(table, ["a"], actual="real", expected="forecast")
    assert err.value.field == "expected"


def test_negative_count_is_refused_with_its_row() -> None:
    """A negative denominator is bad input, named with its leaf index and value."""
    with pytest.raises(InvalidInput, match=r"must be >= 0, got -3") as err:
        LeafTable.derived({"a": ["x", "y"]}, [1.0, 1.0], [1.0, 1.0], [5.0, -3.0], [5.0, 5.0])
    assert err.value.field == "denominator_actual[1]"


def test_empty_table_is_refused() -> None:
    """No leaves at all: nothing to localize, said plainly."""
    with pytest.raises(InvalidInput, match="empty") as err:
        LeafTable.additive({"a": []}, [], [])
    assert err.value.field == "leaves"


def test_non_finite_value_is_refused() -> None:
    """A NaN forecast is refused with its position."""
    with pytest.raises(InvalidInput, match="finite") as err:
        LeafTable.additive({"a": ["x", "y"]}, [1.0, 2.0], [1.0, float("nan")])
    assert err.value.field == "expected[1]"


# --- benchmark-shaped cases (generated; the real corpora are bench/rootcause.py's) ----------


def _benchmark_cases(bench_data: Path) -> list[dict[str, str]]:
    root = bench_data / "rootcause"
    with (root / "cases.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_b0_layout_cases_with_three_causes_are_localized(bench_data: Path) -> None:
    """A three-cause case in B0's layout for 1-, 2- and 3-D causes: F1 >= 0.9."""
    root = bench_data / "rootcause"
    cases = _benchmark_cases(bench_data)
    chosen = [
        next(c for c in cases if c["setting"] == f"B_cuboid_layer_{layer}_n_ele_3")
        for layer in (1, 2, 3)
    ]
    scores = []
    for case in chosen:
        leaves = read_leaf_table(
            root / case["files"], list("abcd"), actual="real", expected="predict"
        )
        predicted = [e.label for e in localize(leaves).elements]
        scores.append(score_case(predicted, case["root_cause"]))
    assert micro_f1(scores).f1 >= 0.9


def test_rs_layout_ratio_cases_are_localized(bench_data: Path) -> None:
    """Four cases in RS's layout (a success rate, history before the minute): F1 >= 0.6."""
    root = bench_data / "rootcause"
    chosen = [c for c in _benchmark_cases(bench_data) if c["dataset"] == "RS"][:8]
    scores = []
    for case in chosen:
        leaves = read_rs_case(root / case["files"], float(case["timestamp"]))
        predicted = [e.label for e in localize(leaves).elements]
        scores.append(score_case(predicted, case["root_cause"]))
    assert micro_f1(scores).f1 >= 0.6


# --- the CLI -------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    import argparse

    from cluster.commands import rootcause as command

    parser = argparse.ArgumentParser(prog="twinloop")
    command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["rootcause", *argv])
    code: int = args.handler(args)
    return code


def test_cli_prints_the_planted_cause_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``twinloop rootcause leaves.csv --dims … --json`` prints the result model."""
    leaves = _additive_case(7, [{"a": "a1", "c": "c2"}], drop=0.4)
    columns = {
        d: [leaves.labels[j][c] for c in leaves.codes[:, j]] for j, d in enumerate(leaves.dims)
    }
    table = pa.table(
        {**columns, "real": leaves.value("actual"), "predict": leaves.value("expected")}
    )
    path = tmp_path / "leaves.csv"
    pacsv.write_csv(table, path)
    argv = [str(path), "--dims", "a,b,c,d", "--actual", "real", "--expected", "predict"]
    assert _cli([*argv, "--json"]) == 0
    result = RootCauseResult.model_validate_json(capsys.readouterr().out)
    assert [e.label for e in result.elements] == ["a=a1&c=c2"]
    assert _cli(argv) == 0
    assert "a=a1&c=c2" in capsys.readouterr().out


def test_cli_refuses_mixed_additive_and_ratio_columns(tmp_path: Path) -> None:
    """--actual together with --numerator-actual is ambiguous and refused by name."""
    path = tmp_path / "x.csv"
    path.write_text("a,n,d,real,predict\nx,1,2,1,1\n")
    with pytest.raises(InvalidInput) as err:
        _cli(
            [
                str(path),
                "--dims",
                "a",
                "--actual",
                "real",
                "--expected",
                "predict",
                "--numerator-actual",
                "n",
                "--numerator-expected",
                "n",
                "--denominator-actual",
                "d",
                "--denominator-expected",
                "d",
            ]
        )
    assert err.value.field == "actual"
