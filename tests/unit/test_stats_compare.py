"""The one-call comparison: every input form, corrections, SRM, edge cases and bad input."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from twinloop.errors import InvalidInput
from twinloop.stats.compare import ComparisonResult, compare, compare_metrics
from twinloop.stats.sufficient import SampleStats, merge

AB: list[dict[str, Any]] = [{"name": "A", "control": True}, {"name": "B"}]


def _spec(
    *metrics: dict[str, Any], variants: list[dict[str, Any]] | None = None, **settings: Any
) -> dict[str, Any]:
    return {
        "variants": variants or [dict(v) for v in AB],
        "metrics": list(metrics),
        "settings": settings,
    }


def _continuous(
    name: str, a: tuple[int, float, float], b: tuple[int, float, float], **kw: Any
) -> dict[str, Any]:
    forms = {
        k: {"form": "continuous", "n": v[0], "mean": v[1], "std": v[2]}
        for k, v in (("A", a), ("B", b))
    }
    return {"name": name, "variants": forms, **kw}


def _binomial(name: str, a: tuple[int, int], b: tuple[int, int], **kw: Any) -> dict[str, Any]:
    forms = {k: {"form": "binomial", "n": v[0], "successes": v[1]} for k, v in (("A", a), ("B", b))}
    return {"name": name, "variants": forms, **kw}


def _no_nan(result: ComparisonResult) -> bool:
    text = result.model_dump_json()
    return "NaN" not in text and "Infinity" not in text


def test_seed_point_form_is_analysed_without_significance() -> None:
    """The seed's example: effects and % changes shown, nothing tested, each with a coded note."""
    seed = {
        "accuracy": (0.92, 0.78, -15.2),
        "latency": (100, 250, 150),
        "satisfaction": (0.85, 0.72, -15.3),
    }
    metrics = [
        {
            "name": name,
            "direction": "lower" if name == "latency" else "higher",
            "variants": {
                "A": {"form": "point", "value": w},
                "B": {"form": "point", "value": lo, "percent_change": pct},
            },
        }
        for name, (w, lo, pct) in seed.items()
    ]
    result = compare(_spec(*metrics))
    for comparison in result.comparisons:
        assert comparison.method == "point_difference"
        assert comparison.p_value is None and comparison.outcome == "not_tested"
        assert [n.code for n in comparison.notes] == ["point_form_no_significance"]
        assert comparison.favours == "control"
    latency = result.get("latency").relative
    assert latency is not None and latency.estimate == pytest.approx(1.5)
    assert [n.code for n in result.notes] == ["srm_not_checked"]


def test_a_wrong_stated_percent_change_is_noted() -> None:
    """percentChange +15.2 for a fall from 0.92 to 0.78 disagrees with the values."""
    metric = {
        "name": "accuracy",
        "variants": {
            "A": {"form": "point", "value": 0.92},
            "B": {"form": "point", "value": 0.78, "percent_change": 15.2},
        },
    }
    comparison = compare(_spec(metric)).comparisons[0]
    assert comparison.has("point_percent_change_mismatch")


def test_corrections_across_metrics_match_statsmodels_holm_and_bh() -> None:
    """Four metrics' raw p-values are adjusted as one family, as multipletests does."""
    metrics = [
        _binomial("conversion", (10000, 500), (10000, 570)),
        _continuous("latency", (5000, 100.0, 30.0), (5000, 101.5, 30.0), direction="lower"),
        _continuous("revenue", (5000, 20.0, 9.0), (5000, 20.2, 9.0)),
        _binomial("retention", (8000, 2400), (8000, 2390)),
    ]
    for correction, reference in (("holm", "holm"), ("benjamini_hochberg", "fdr_bh")):
        result = compare(_spec(*metrics, correction=correction))
        raw = [c.p_value for c in result.comparisons]
        expected = multipletests(raw, method=reference)[1]
        assert [c.p_value_adjusted for c in result.comparisons] == pytest.approx(
            list(expected), rel=1e-12
        )
        assert all(c.correction == correction for c in result.comparisons)
    latency = compare(_spec(*metrics)).get("latency")
    assert latency.favours == "control" and latency.outcome == "worse"


def test_correction_per_role_uses_separate_families() -> None:
    """Guardrails are corrected among themselves when the scope is 'role'."""
    metrics = [
        _binomial("conversion", (10000, 500), (10000, 570)),
        _binomial("errors", (10000, 50), (10000, 75), role="guardrail", direction="lower"),
    ]
    result = compare(_spec(*metrics, correction_scope="role"))
    for comparison in result.comparisons:
        assert comparison.p_value_adjusted == comparison.p_value


def test_sample_ratio_mismatch_is_flagged_from_declared_units() -> None:
    """50/50 planned, 10000 vs 10600 units: the experiment carries an 'srm' note."""
    variants: list[dict[str, Any]] = [
        {"name": "A", "control": True, "units": 10000},
        {"name": "B", "units": 10600},
    ]
    result = compare(_spec(_binomial("c", (10000, 500), (10600, 530)), variants=variants))
    assert result.srm is not None and result.srm.flagged
    assert result.srm.p_value == pytest.approx(sps.chisquare([10000, 10600]).pvalue, rel=1e-9)
    assert [n.code for n in result.notes] == ["srm"]


def test_srm_infers_units_from_the_first_metric_with_counts() -> None:
    """Without declared units, the first metric with n per variant is used and named."""
    variants: list[dict[str, Any]] = [
        {"name": "A", "control": True, "allocation": 0.2},
        {"name": "B", "allocation": 0.8},
    ]
    result = compare(_spec(_binomial("c", (2000, 100), (8000, 400)), variants=variants))
    assert result.srm is not None and result.srm.source == "metric:c"
    assert result.srm.statistic == pytest.approx(0.0) and not result.srm.flagged


def test_several_treatments_are_each_compared_with_control() -> None:
    """Control + two treatments: one comparison per metric and treatment."""
    variants: list[dict[str, Any]] = [{"name": "A", "control": True}, {"name": "B"}, {"name": "C"}]
    metric = {
        "name": "m",
        "variants": {
            k: {"form": "binomial", "n": 1000, "successes": s}
            for k, s in (("A", 100), ("B", 120), ("C", 90))
        },
    }
    result = compare(_spec(metric, variants=variants))
    assert [c.treatment.variant for c in result.comparisons] == ["B", "C"]
    effect = result.get("m", "C").absolute
    assert effect is not None and effect.estimate == pytest.approx(-0.01)


def test_negative_control_mean_keeps_the_direction_of_change() -> None:
    """Profit -10 → -8 is an improvement: lift +20%, outcome 'better', noted."""
    result = compare(_spec(_continuous("profit", (400, -10.0, 3.0), (400, -8.0, 3.0))))
    comparison = result.comparisons[0]
    assert comparison.relative is not None and comparison.relative.estimate == pytest.approx(0.2)
    assert comparison.outcome == "better" and comparison.has("negative_control_mean")
    assert comparison.bayesian is not None and comparison.bayesian.chance_to_beat_control > 0.99


def test_zero_variance_is_a_note_not_a_crash() -> None:
    """Both arms constant: effect shown, p-value None with 'zero_variance', no NaN in JSON."""
    result = compare(_spec(_continuous("m", (100, 1.0, 0.0), (100, 1.0, 0.0))))
    comparison = result.comparisons[0]
    assert comparison.p_value is None and comparison.has("zero_variance")
    assert comparison.outcome == "not_tested" and _no_nan(result)


def test_a_variant_without_data_gives_a_note_and_no_nan() -> None:
    """n = 0 in treatment: 'no_data', every number None rather than NaN."""
    metric = _continuous("m", (100, 1.0, 1.0), (0, 0.0, 0.0))
    result = compare(_spec(metric, _binomial("c", (100, 10), (100, 12))))
    comparison = result.get("m")
    assert comparison.has("no_data") and comparison.p_value is None
    assert comparison.p_value_adjusted is None and comparison.absolute is None
    assert _no_nan(result)
    # The untested metric leaves the family: the other metric's p-value is unadjusted.
    other = result.get("c")
    assert other.p_value is not None and other.p_value_adjusted == pytest.approx(other.p_value)


def test_tiny_base_rate_gets_notes_and_an_exact_bayesian_probability() -> None:
    """2 vs 6 conversions in 50k: 'few_events', and the exact Beta-Binomial chance."""
    result = compare(_spec(_binomial("c", (50000, 2), (50000, 6))))
    comparison = result.comparisons[0]
    assert comparison.has("few_events") and comparison.has("unstable_relative_lift")
    assert comparison.bayesian is not None
    assert comparison.bayesian.method == "beta_binomial_exact"
    assert 0.9 < comparison.bayesian.chance_to_beat_control < 1.0


def test_lower_is_better_flips_the_chance_to_beat_control() -> None:
    """For latency, a higher treatment mean means a low chance to beat control."""
    result = compare(
        _spec(_continuous("latency", (500, 100.0, 20.0), (500, 104.0, 20.0), direction="lower"))
    )
    bayes = result.comparisons[0].bayesian
    assert bayes is not None
    assert bayes.chance_to_beat_control == pytest.approx(1 - bayes.prob_treatment_greater)
    assert bayes.chance_to_beat_control < 0.01


def test_every_input_form_of_the_same_data_gives_the_same_test() -> None:
    """Raw values, (n, mean, std) and (n, Σx, Σx²) of the same units give the same p-value."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(10, 2, 300), rng.normal(10.4, 2, 320)
    forms: dict[str, Callable[[np.ndarray], dict[str, Any]]] = {
        "raw": lambda x: {"form": "raw", "values": list(x)},
        "continuous": lambda x: {
            "form": "continuous",
            "n": x.size,
            "mean": x.mean(),
            "std": x.std(ddof=1),
        },
        "sums": lambda x: {"form": "sums", "n": x.size, "sum": x.sum(), "sum_sq": (x * x).sum()},
    }
    p_values = [
        compare(_spec({"name": "m", "variants": {"A": f(a), "B": f(b)}})).comparisons[0].p_value
        for f in forms.values()
    ]
    reference = sps.ttest_ind(b, a, equal_var=False).pvalue
    assert p_values == pytest.approx([reference] * 3, rel=1e-9)


def test_ratio_and_cuped_forms_name_their_methods() -> None:
    """A ratio metric uses the delta method; a metric with a pre-period covariate uses CUPED."""
    rng = np.random.default_rng(8)
    pre = [rng.normal(5, 1, 400) for _ in range(2)]
    post = [p + rng.normal(0.1 * i, 0.5, 400) for i, p in enumerate(pre)]
    cuped_metric = {
        "name": "spend",
        "variants": {
            k: {"form": "raw", "values": list(y), "pre_values": list(x)}
            for k, y, x in zip("AB", post, pre, strict=True)
        },
    }
    ratio_metric = {
        "name": "revenue_per_session",
        "variants": {
            k: {
                "form": "ratio",
                "n": 1000,
                "num_sum": s,
                "num_sum_sq": 40000,
                "den_sum": 2000,
                "den_sum_sq": 5000,
                "cross_sum": 12000,
            }
            for k, s in (("A", 5000), ("B", 5200))
        },
    }
    result = compare(_spec(cuped_metric, ratio_metric))
    assert result.get("spend").method == "cuped_welch_t"
    cuped = result.get("spend").cuped
    assert cuped is not None and cuped.variance_ratio < 0.5
    assert result.get("revenue_per_session").method == "ratio_delta_method_z"


def test_merge_order_of_worker_statistics_does_not_change_a_single_byte() -> None:
    """Chunks merged in two orders give byte-identical result JSON."""
    rng = np.random.default_rng(9)
    chunks = {
        k: [SampleStats.from_array(rng.gamma(2.0, 3.0 + i, 700)) for _ in range(6)]
        for i, k in enumerate("AB")
    }
    forward = {k: merge(v) for k, v in chunks.items()}
    backward = {k: merge(reversed(v)) for k, v in chunks.items()}
    runs = [
        compare_metrics(
            [{"name": "m", "variants": data}], AB, {"sequential": True}
        ).model_dump_json()
        for data in (forward, backward)
    ]
    assert runs[0] == runs[1]


def test_result_round_trips_through_json() -> None:
    """The result validates back from its own JSON, equal to the original."""
    result = compare(
        _spec(_binomial("c", (1000, 100), (1000, 130)), sequential=True, target_relative_effect=0.1)
    )
    again = ComparisonResult.model_validate_json(result.model_dump_json())
    assert again == result
    comparison = result.comparisons[0]
    assert comparison.sequential is not None and comparison.power is not None
    assert comparison.sequential.method == "asymptotic_confidence_sequence"
    assert (
        comparison.power.mde_relative is not None and comparison.power.power_at_target is not None
    )
    assert json.loads(result.model_dump_json())["settings"]["alpha"] == 0.05


def test_power_reports_the_mde_for_the_observed_standard_error() -> None:
    """MDE = k*·se with k* ≈ 2.8016 at α = 0.05 and 80% power."""
    comparison = compare(
        _spec(_continuous("m", (1000, 50.0, 10.0), (1000, 50.0, 10.0)))
    ).comparisons[0]
    se = math.sqrt(2 * 100 / 1000)
    assert comparison.power is not None and comparison.power.mde_absolute is not None
    assert comparison.power.mde_absolute == pytest.approx(2.801581787 * se, rel=1e-8)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s["metrics"][0]["variants"]["B"].update(n=-5), "metrics[0].variants.B.n"),
        (
            lambda s: s["metrics"][0]["variants"]["B"].update(successes=2000),
            "metrics[0].variants.B.successes",
        ),
        (lambda s: s["metrics"][1]["variants"]["A"].update(std=-1.0), "metrics[1].variants.A.std"),
        (lambda s: s["metrics"][1]["variants"].pop("B"), "metrics[1].variants"),
        (lambda s: s["variants"][1].update(control=True), "variants"),
        (lambda s: s["metrics"][0]["variants"]["A"].update(n="many"), "metrics[0].variants.A.n"),
        (lambda s: s["metrics"][0].update(kind="wrong"), "metrics[0].kind"),
        (lambda s: s["settings"].update(alpha=1.5), "settings.alpha"),
        (
            lambda s: s["metrics"][1]["variants"]["B"].update(form="sums"),
            "metrics[1].variants.B.sum",
        ),
    ],
)
def test_bad_input_raises_invalid_input_naming_the_field(
    mutate: Callable[[dict[str, Any]], object], field: str
) -> None:
    """Negative counts, successes > n, negative std, mismatched variants… each name their field."""
    spec = _spec(
        _binomial("c", (1000, 100), (1000, 120)), _continuous("m", (100, 1.0, 1.0), (100, 1.1, 1.0))
    )
    mutate(spec)
    with pytest.raises(InvalidInput) as info:
        compare(spec)
    assert info.value.field == field


def test_gaussian_prior_and_absolute_scale_are_applied_and_named() -> None:
    """A N(0, 0.01²) prior on the relative lift shrinks it; the absolute scale ignores it."""
    metric = _continuous("m", (2000, 10.0, 4.0), (2000, 10.4, 4.0))
    flat = compare(_spec(metric)).comparisons[0].bayesian
    shrunk = compare(_spec(metric, prior={"mean": 0.0, "std": 0.01})).comparisons[0].bayesian
    absolute = compare(_spec(metric, bayesian_scale="absolute")).comparisons[0].bayesian
    assert flat is not None and shrunk is not None and absolute is not None
    assert flat.prior == "flat" and shrunk.prior == "normal(0, 0.01)"
    assert shrunk.posterior_mean is not None and flat.posterior_mean is not None
    assert 0 < shrunk.posterior_mean < flat.posterior_mean
    assert absolute.lift_scale == "absolute"
    assert absolute.posterior_mean == pytest.approx(0.4)


def test_optional_analyses_can_be_switched_off() -> None:
    """bayesian=False and the default sequential=False leave those sections empty."""
    comparison = compare(
        _spec(_binomial("c", (1000, 100), (1000, 120)), bayesian=False)
    ).comparisons[0]
    assert comparison.bayesian is None and comparison.sequential is None
    assert comparison.power is not None


def test_input_and_result_json_follow_their_published_schemas() -> None:
    """A JSON spec validates against CompareSpec's schema, the result against its own."""
    import jsonschema

    from twinloop.stats.inputs import CompareSpec

    spec = _spec(
        _binomial("c", (1000, 100), (1000, 130)),
        _continuous("m", (50, 1.0, 0.5), (50, 1.2, 0.5)),
        sequential=True,
    )
    jsonschema.validate(spec, CompareSpec.model_json_schema())
    result = json.loads(compare(spec).model_dump_json())
    jsonschema.validate(result, ComparisonResult.model_json_schema())
