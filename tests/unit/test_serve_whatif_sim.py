"""The simulation what-if at the HTTP edge without Ray: its request, its limits, its route.

The Twin capability runs in-process behind ``LocalClient`` (as in test_serve_edge.py); runs are
a few hundred customers over a few days, so each takes well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from serve_apps.capabilities.twin import TwinService
from serve_apps.clients import LocalClient
from serve_apps.config import app_config
from serve_apps.ingress import Edge, create_api
from serve_apps.limits import Limits
from serve_apps.runs import Deferred, RunBook
from serve_apps.schemas.sandbox import SimWhatIfRequest, run_customer_days
from twinloop.errors import InvalidInput, LimitExceeded
from twinloop.replication.whatif.simulated import SimWhatIfResult
from twinloop.sim.domains import environment
from twinloop.store import SqliteStore

SMALL: dict[str, Any] = {
    "environment": "sales",
    "customers": 300,
    "changes": {"accuracy": "+10%"},
    "settings": {"days": 6, "replicates": 4, "seed": 3},
}


def request(**changes: Any) -> SimWhatIfRequest:
    return SimWhatIfRequest.model_validate({**SMALL, **changes})


@pytest.fixture
def twin(tmp_path: Path) -> TwinService:
    config = app_config({"settings": {"data_dir": str(tmp_path)}})
    return TwinService(config, SqliteStore(tmp_path / "twinloop.sqlite3"))


@pytest.fixture
def client(twin: TwinService, tmp_path: Path) -> TestClient:
    edge = Edge(
        config=twin.config,
        runs=RunBook(twin.store),
        capabilities={"twin": LocalClient(twin)},
    )
    return TestClient(create_api(edge))


def test_request_takes_camel_case_and_refuses_unknown_fields() -> None:
    """environmentId is the seed's spelling of environment_id; an unknown key is refused."""
    body = {"environmentId": "env-1", "changes": {"price": 0.1}}
    assert SimWhatIfRequest.model_validate(body).environment_id == "env-1"
    with pytest.raises(ValidationError, match="changez"):
        SimWhatIfRequest.model_validate({"changez": {"price": 0.1}, "changes": {}})
    with pytest.raises(ValidationError, match="unknown environment 'nope'"):
        request(environment="nope")


def test_environment_and_environment_id_together_are_refused() -> None:
    """One way to name the twin, as in the sandbox."""
    with pytest.raises(InvalidInput, match="environment_id: give `environment` or"):
        SimWhatIfRequest.model_validate({**SMALL, "environmentId": "sales"}).check(Limits())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"acuracy": 0.1}, "changes.acuracy"),
        ({"accuracy": "+50%"}, "changes.accuracy"),  # 0.8 → 1.2, above 1
        ({"price": "lots"}, "changes.price"),
    ],
)
def test_bad_changes_name_their_field_before_any_run(changes: dict[str, Any], field: str) -> None:
    """An unknown name, a parameter pushed out of range or an unreadable value: 422 up front."""
    with pytest.raises(InvalidInput) as caught:
        request(changes=changes).check(Limits())
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("changes", "limits", "field"),
    [
        ({"settings": {"replicates": 40}}, Limits(max_replicates=20), "settings.replicates"),
        ({"settings": {"days": 40}}, Limits(max_days=30), "settings.days"),
        ({"customers": 5_000}, Limits(max_customers=1_000), "customers"),
        (
            {"customers": None, "environment": environment("sales", initial_customers=5_000)},
            Limits(max_customers=1_000),
            "environment.initial_customers",
        ),
        ({}, Limits(max_customer_days=1e4), "customer_days"),
    ],
)
def test_the_sandbox_limits_apply_and_name_the_field(
    changes: dict[str, Any], limits: Limits, field: str
) -> None:
    """Days, replicates, customers (override or inline twin) and customer-days: 413 naming it."""
    with pytest.raises(LimitExceeded, match=f"^{field}: .* exceeds the limit of"):
        request(**changes).check(limits)


def test_customer_days_count_both_twins_with_the_changed_arrivals() -> None:
    """Baseline and changed twin run every replicate; +100 % arrivals doubles the changed
    twin's arrivals."""
    rate = environment("sales").acquisition.rate_per_day
    same = request()
    more = request(changes={"arrivals": 1.0})
    assert same.check_size(same.to_spec(), Limits()) == 4 * 2 * run_customer_days(300, rate, 6)
    assert more.check_size(more.to_spec(), Limits()) == 4 * (
        run_customer_days(300, rate, 6) + run_customer_days(300, 2 * rate, 6)
    )


def test_work_above_the_inline_budget_is_deferred(tmp_path: Path) -> None:
    """Above inline_customer_days the capability answers Deferred (the ingress turns it into a
    202) instead of simulating in the request."""
    config = app_config(
        {"settings": {"data_dir": str(tmp_path)}, "limits": {"inline_customer_days": 1e4}}
    )
    twin = TwinService(config, SqliteStore(tmp_path / "twinloop.sqlite3"))
    answer = twin.what_if_sim(request())
    assert isinstance(answer, Deferred) and "inline budget" in answer.reason


def test_route_answers_inline_with_paired_intervals(client: TestClient) -> None:
    """A small what-if answers 200 with the core's result: accuracy +10 % is applied and does
    not lower conversion beyond its interval."""
    response = client.post("/metrics/what-if/simulate", json=SMALL)
    assert response.status_code == 200, response.text
    result = SimWhatIfResult.model_validate(response.json())
    assert result.changes == {"accuracy": pytest.approx(0.1)} and result.seed == 3
    assert result.kpi("model_accuracy").relative_change == pytest.approx(0.1, abs=0.01)
    conversion = result.kpi("conversion_rate")
    assert conversion.difference_low <= conversion.difference <= conversion.difference_high
    assert conversion.difference_high > 0


def test_route_resolves_a_stored_environment_id(client: TestClient) -> None:
    """environmentId names a stored environment; an unknown one is 404 naming it."""
    stored = {"id": "env-small", "preset": "sales", "changes": {"initial_customers": 250}}
    assert client.post("/environments", json=stored).status_code == 201
    body = {k: v for k, v in SMALL.items() if k not in ("environment", "customers")}
    response = client.post("/metrics/what-if/simulate", json={**body, "environmentId": "env-small"})
    assert response.status_code == 200, response.text
    missing = client.post("/metrics/what-if/simulate", json={**body, "environmentId": "env-none"})
    assert missing.status_code == 404 and missing.json()["field"] == "environment"


def test_route_maps_bad_input_to_422_and_size_to_413(client: TestClient) -> None:
    """The errors name the field as the client spelled it."""
    unknown = client.post("/metrics/what-if/simulate", json={**SMALL, "changes": {"acuracy": 0.1}})
    assert (unknown.status_code, unknown.json()["field"]) == (422, "changes.acuracy")
    replicates = {**SMALL, "settings": {"replicates": 1}}
    wrong = client.post("/metrics/what-if/simulate", json=replicates)
    assert (wrong.status_code, wrong.json()["field"]) == (422, "settings.replicates")
    big = client.post("/metrics/what-if/simulate", json={**SMALL, "customers": 10**7})
    assert (big.status_code, big.json()["field"]) == (413, "customers")
