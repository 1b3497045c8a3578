"""Domain presets: four businesses built on one engine, each naming its model's decision and KPIs.

A preset is a ready ``BusinessEnvironment`` plus the KPIs its users care about, with the
business names of the engine's generic KPIs (in sales a conversion is a deal won).
"""

from __future__ import annotations

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.sim.environment import (
    Acquisition,
    BusinessEnvironment,
    Channel,
    Churn,
    Costs,
    Segment,
    Transaction,
)

WEEKDAY_B2B = [1.15, 1.2, 1.2, 1.15, 1.0, 0.65, 0.65]
WEEKDAY_B2C = [0.9, 0.9, 0.95, 1.0, 1.1, 1.1, 1.05]


class DomainPreset(FrozenModel):
    """A domain: its environment, the decision its model makes and its primary KPIs."""

    domain: str
    decision: str
    primary_kpis: list[str]
    kpi_labels: dict[str, str]
    environment: BusinessEnvironment


def _segments(
    spec: list[tuple[str, float, list[float], float, float, list[float] | None]],
) -> list[Segment]:
    return [
        Segment(
            name=n, share=sh, feature_mean=mu, value=val, conversion_multiplier=cm, truth_weights=tw
        )
        for n, sh, mu, val, cm, tw in spec
    ]


def _sales() -> DomainPreset:
    env = BusinessEnvironment(
        name="sales-b2b",
        domain="sales",
        decision="lead scoring: which leads the sales team works first",
        initial_customers=20_000,
        segments=_segments(
            [
                ("smb", 0.55, [0.3, -0.2, 0.1, 0.0], 1.0, 1.0, None),
                ("mid_market", 0.3, [0.0, 0.3, -0.2, 0.2], 2.5, 0.9, None),
                ("enterprise", 0.15, [-0.4, 0.5, 0.4, -0.3], 8.0, 0.7, [-0.8, 0.9, 0.6, 0.4]),
            ]
        ),
        acquisition=Acquisition(
            rate_per_day=400.0,
            weekly=WEEKDAY_B2B,
            yearly_amplitude=0.1,
            yearly_peak_day=300.0,
            channels=[
                Channel(name="inbound", share=0.5, cost_per_acquisition=40.0),
                Channel(name="outbound", share=0.3, cost_per_acquisition=120.0),
                Channel(name="partner", share=0.2, cost_per_acquisition=80.0),
            ],
        ),
        interaction_probability_per_day=0.12,
        transaction=Transaction(
            base_conversion=0.06,
            decision_uplift=0.35,
            average_order_value=900.0,
            order_value_sigma=0.6,
        ),
        churn=Churn(base_hazard_per_day=0.02, satisfaction_sensitivity=3.0),
        costs=Costs(fixed_per_day=2_000.0),
    )
    return DomainPreset(
        domain="sales",
        decision=env.decision,
        primary_kpis=["conversion_rate", "revenue", "new"],
        kpi_labels={
            "conversions": "deals won",
            "conversion_rate": "win rate",
            "new": "pipeline (new leads)",
            "revenue": "revenue",
        },
        environment=env,
    )


def _marketing() -> DomainPreset:
    env = BusinessEnvironment(
        name="marketing-b2c",
        domain="marketing",
        decision="next-best offer: which campaign each customer receives",
        initial_customers=100_000,
        segments=_segments(
            [
                ("new_visitors", 0.5, [0.0, 0.0, 0.0, 0.0], 0.8, 0.8, None),
                ("returning", 0.35, [0.5, 0.2, -0.1, 0.1], 1.0, 1.3, None),
                ("loyal", 0.15, [1.0, 0.4, 0.3, -0.2], 1.4, 1.8, None),
            ]
        ),
        acquisition=Acquisition(
            rate_per_day=3_000.0,
            weekly=WEEKDAY_B2C,
            yearly_amplitude=0.25,
            yearly_peak_day=330.0,
            channels=[
                Channel(name="search", share=0.4, cost_per_acquisition=1.5),
                Channel(name="social", share=0.35, cost_per_acquisition=1.0),
                Channel(name="email", share=0.25, cost_per_acquisition=0.2),
            ],
        ),
        interaction_probability_per_day=0.3,
        transaction=Transaction(
            base_conversion=0.035,
            decision_uplift=0.25,
            average_order_value=55.0,
            order_value_sigma=0.7,
        ),
        churn=Churn(base_hazard_per_day=0.03, satisfaction_sensitivity=2.5),
        costs=Costs(fixed_per_day=500.0),
    )
    return DomainPreset(
        domain="marketing",
        decision=env.decision,
        primary_kpis=["conversion_rate", "revenue", "cost"],
        kpi_labels={"conversion_rate": "campaign conversion rate", "cost": "spend incl. CAC"},
        environment=env,
    )


def _customer_success() -> DomainPreset:
    env = BusinessEnvironment(
        name="customer-success-saas",
        domain="customer_success",
        decision="churn-risk intervention: which accounts get a success call",
        decision_target="retention",
        initial_customers=50_000,
        segments=_segments(
            [
                ("starter", 0.6, [0.0, -0.3, 0.0, 0.1], 1.0, 1.0, None),
                ("growth", 0.3, [0.4, 0.2, 0.1, 0.0], 3.0, 1.0, None),
                ("enterprise", 0.1, [0.8, 0.6, -0.2, 0.3], 12.0, 1.0, None),
            ]
        ),
        acquisition=Acquisition(
            rate_per_day=250.0,
            weekly=WEEKDAY_B2B,
            channels=[
                Channel(name="self_serve", share=0.7, cost_per_acquisition=30.0),
                Channel(name="sales_led", share=0.3, cost_per_acquisition=300.0),
            ],
        ),
        interaction_probability_per_day=0.2,
        transaction=Transaction(
            base_conversion=0.03,
            decision_uplift=0.4,
            average_order_value=120.0,
            order_value_sigma=0.3,
        ),
        churn=Churn(base_hazard_per_day=0.004, satisfaction_sensitivity=4.0),
        costs=Costs(fixed_per_day=1_500.0),
    )
    return DomainPreset(
        domain="customer_success",
        decision=env.decision,
        primary_kpis=["churned", "satisfaction", "revenue"],
        kpi_labels={
            "churned": "lost accounts",
            "active": "retained accounts",
            "revenue": "expansion revenue (LTV proxy)",
        },
        environment=env,
    )


def _analytics() -> DomainPreset:
    env = BusinessEnvironment(
        name="analytics-platform",
        domain="analytics",
        decision="insight ranking: which forecast or insight each user is shown",
        initial_customers=30_000,
        segments=_segments(
            [
                ("analysts", 0.5, [0.2, 0.2, 0.0, 0.0], 1.0, 1.0, None),
                ("managers", 0.35, [-0.1, 0.4, 0.2, 0.0], 1.5, 0.8, None),
                ("executives", 0.15, [-0.3, 0.6, 0.5, 0.2], 3.0, 0.6, None),
            ]
        ),
        acquisition=Acquisition(rate_per_day=300.0, weekly=WEEKDAY_B2B),
        interaction_probability_per_day=0.5,
        transaction=Transaction(
            base_conversion=0.1,
            decision_uplift=0.3,
            average_order_value=20.0,
            order_value_sigma=0.4,
        ),
        churn=Churn(base_hazard_per_day=0.01, satisfaction_sensitivity=3.5),
        costs=Costs(fixed_per_day=800.0),
    )
    return DomainPreset(
        domain="analytics",
        decision=env.decision,
        primary_kpis=["conversion_rate", "satisfaction", "cost"],
        kpi_labels={
            "conversions": "insights acted on",
            "conversion_rate": "adoption rate",
            "model_accuracy": "decision accuracy",
        },
        environment=env,
    )


_BUILDERS = {
    "sales": _sales,
    "marketing": _marketing,
    "customer_success": _customer_success,
    "analytics": _analytics,
}
DOMAINS = tuple(_BUILDERS)


def preset(domain: str) -> DomainPreset:
    """The preset of a domain; InvalidInput names the field when the domain is unknown."""
    try:
        return _BUILDERS[domain]()
    except KeyError:
        raise InvalidInput(
            "domain", f"unknown domain {domain!r}; choose from {list(DOMAINS)}"
        ) from None


def environment(domain: str, **changes: object) -> BusinessEnvironment:
    """A domain's environment with top-level fields replaced (e.g. initial_customers)."""
    env = preset(domain).environment
    if not changes:
        return env
    return BusinessEnvironment.model_validate({**env.model_dump(), **changes})


def steady_environment(
    rate_per_day: float = 200.0, churn_per_day: float = 0.05, **changes: object
) -> BusinessEnvironment:
    """One segment, constant arrivals and churn hazard, no model effect on anything.

    The business with closed-form answers (the active population is M/M/∞ with mean ≈ λ/μ,
    conversions given interactions are binomial), used to check the simulator and the sandbox's
    statistics against analytic results. ``changes`` replace top-level fields.
    """
    base = BusinessEnvironment(
        name="steady",
        initial_customers=0,
        segments=[Segment(name="all", share=1.0)],
        acquisition=Acquisition(rate_per_day=rate_per_day),
        interaction_probability_per_day=0.3,
        transaction=Transaction(
            base_conversion=0.1,
            decision_uplift=0.0,
            satisfaction_elasticity=0.0,
            average_order_value=50.0,
        ),
        churn=Churn(base_hazard_per_day=churn_per_day, satisfaction_sensitivity=0.0),
    )
    return BusinessEnvironment.model_validate({**base.model_dump(), **changes})
