"""docs/statistics.md example: one call compares four metrics in four input forms.

.venv/bin/python docs/examples/stats/compare_example.py
"""

from twinloop.stats import compare

spec = {
    "variants": [
        {"name": "model-v2", "control": True, "allocation": 0.5, "units": 20_000},
        {"name": "model-v3", "allocation": 0.5, "units": 20_210},
    ],
    "metrics": [
        {
            "name": "conversion",
            "variants": {
                "model-v2": {"form": "binomial", "n": 20_000, "successes": 1_000},
                "model-v3": {"form": "binomial", "n": 20_210, "successes": 905},
            },
        },
        {
            "name": "latency_ms",
            "direction": "lower",
            "role": "guardrail",
            "variants": {
                "model-v2": {"form": "continuous", "n": 20_000, "mean": 100.0, "std": 35.0},
                "model-v3": {"form": "continuous", "n": 20_210, "mean": 250.0, "std": 80.0},
            },
        },
        {
            "name": "revenue_per_session",
            "variants": {
                "model-v2": {
                    "form": "ratio",
                    "n": 20_000,
                    "num_sum": 61_000.0,
                    "num_sum_sq": 1_450_000.0,
                    "den_sum": 48_000.0,
                    "den_sum_sq": 160_000.0,
                    "cross_sum": 210_000.0,
                },
                "model-v3": {
                    "form": "ratio",
                    "n": 20_210,
                    "num_sum": 58_900.0,
                    "num_sum_sq": 1_400_000.0,
                    "den_sum": 48_300.0,
                    "den_sum_sq": 161_000.0,
                    "cross_sum": 203_000.0,
                },
            },
        },
        {
            "name": "accuracy",
            "variants": {
                "model-v2": {"form": "point", "value": 0.92},
                "model-v3": {"form": "point", "value": 0.78, "percent_change": -15.2},
            },
        },
    ],
    "settings": {"sequential": True, "target_relative_effect": 0.1},
}

result = compare(spec)
print(f"SRM: p = {result.srm.p_value:.4f}, flagged = {result.srm.flagged}")
header = ("metric", "method", "lift", "95% CI", "p", "p holm", "P(beat)", "outcome")
print("{:<20} {:<21} {:>7} {:>17} {:>9} {:>9} {:>7}  {}".format(*header))
for c in result.comparisons:
    lift = f"{c.relative.estimate:+.1%}" if c.relative else "-"
    ci = c.relative.interval if c.relative else None
    interval = f"[{ci.lower:+.1%}, {ci.upper:+.1%}]" if ci else "-"
    p = f"{c.p_value:.2e}" if c.p_value is not None else "-"
    adjusted = f"{c.p_value_adjusted:.2e}" if c.p_value_adjusted is not None else "-"
    beat = f"{c.bayesian.chance_to_beat_control:.3f}" if c.bayesian else "-"
    print(
        f"{c.metric:<20} {c.method:<21} {lift:>7} {interval:>17} {p:>9} {adjusted:>9} "
        f"{beat:>7}  {c.outcome}"
    )
    for note in c.notes:
        print(f"{'':<20} note {note.code}: {note.message}")
conversion = result.get("conversion")
sequence = conversion.sequential.relative
print(
    f"conversion: sequential 95% CI of lift [{sequence.lower:+.1%}, {sequence.upper:+.1%}], "
    f"always-valid p = {conversion.sequential.p_value:.2e}"
)
print(
    f"conversion: MDE at 80% power = {conversion.power.mde_relative:.1%} relative, "
    f"power against a 10% change = {conversion.power.power_at_target:.3f}"
)
