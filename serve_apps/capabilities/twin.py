"""The twin capability: the environment catalogue (domain presets and stored environments).

An environment id is either a domain preset's name (``sales``, ``marketing``, …) or the id of a
``BusinessEnvironment`` kept in the Store under kind ``environments`` — the convention
calibration uses (``save_calibration`` in ``twinloop.replication.calibration.calibrate``), so a
calibrated twin is listed here as ``calibrated`` (its full result sits under kind
``calibrations``), one posted to ``POST /environments`` as ``stored``. The sandbox routes and
the simulation what-if resolve ``environmentId`` through :meth:`TwinService.resolve`.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from serve_apps.capabilities.base import CapabilityService
from serve_apps.limits import check_limit
from serve_apps.runs import Deferred, Progress
from serve_apps.schemas.environments import (
    EnvironmentCreate,
    EnvironmentDetail,
    EnvironmentList,
    EnvironmentSummary,
)
from serve_apps.schemas.retrain import RetrainModelRequest
from serve_apps.schemas.sandbox import (
    AbTestRequest,
    GridRequest,
    HeadToHeadRequest,
    SandboxRequest,
    SandboxTestRequest,
    SimWhatIfRequest,
    run_customer_days,
)
from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.contract import field_path, invalid_input
from twinloop.errors import InvalidInput, NotFound
from twinloop.improve.data import TrainingData
from twinloop.improve.pipeline import RetrainRequest, RetrainRun, retrain
from twinloop.improve.search import DataSource, Paired, RetrainResult, RetrainSpec, run_search
from twinloop.registry.artifacts import ArtifactStore
from twinloop.registry.registry import Registry
from twinloop.replication.calibration.calibrate import CALIBRATIONS, ENVIRONMENTS
from twinloop.replication.replicates import Evaluate, executor_evaluate, serial_evaluate
from twinloop.replication.whatif.simulated import SimWhatIfResult, SimWhatIfSpec, run_what_if_sim
from twinloop.sandbox.abtest import run_ab_test
from twinloop.sandbox.executor import SerialExecutor
from twinloop.sandbox.grid import run_grid
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.montecarlo import run_test
from twinloop.sandbox.results import AbTestResult, GridResult, HeadToHeadResult, SandboxTestResult
from twinloop.sandbox.specs import parse_sandbox_spec
from twinloop.sim.domains import DOMAINS, environment, preset
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.kpis import SimulationResult
from twinloop.sim.spec import SimulationSpec
from twinloop.store import StoredDocument

SandboxKind = Literal["test", "compare", "grid", "ab_test"]
SandboxResult = SandboxTestResult | HeadToHeadResult | GridResult | AbTestResult
_SANDBOX: dict[str, Callable[..., SandboxResult]] = {
    "test": run_test,
    "compare": run_head_to_head,
    "grid": run_grid,
    "ab_test": run_ab_test,
}


class TwinService(CapabilityService):
    """Environments, the model performance sandbox and the simulation what-if of the twin.

    An inline sandbox or what-if call runs its replicates in this replica (no actor start-up
    cost) when its work is under ``Limits.inline_customer_days``; bigger ones come back
    ``Deferred`` and run in the background over a ``RayExecutor`` actor pool spread across the
    cluster.
    """

    name = "twin"

    def background(self) -> Mapping[str, Callable[[Any, Progress], BaseModel]]:
        ops: dict[str, Callable[[Any, Progress], BaseModel]] = {
            f"sandbox_{kind}": functools.partial(self._background_sandbox, kind)
            for kind in _SANDBOX
        }
        ops["what_if_sim"] = self._background_what_if_sim
        ops["retrain_model"] = self._background_retrain
        return ops

    # The inline operations, one method per operation name (serve_apps/routes/sandbox.py).
    def sandbox_test(self, request: SandboxTestRequest) -> SandboxResult | Deferred:
        return self.sandbox("test", request)

    def sandbox_compare(self, request: HeadToHeadRequest) -> SandboxResult | Deferred:
        return self.sandbox("compare", request)

    def sandbox_grid(self, request: GridRequest) -> SandboxResult | Deferred:
        return self.sandbox("grid", request)

    def sandbox_ab_test(self, request: AbTestRequest) -> SandboxResult | Deferred:
        return self.sandbox("ab_test", request)

    def sandbox(self, kind: SandboxKind, request: SandboxRequest) -> SandboxResult | Deferred:
        """Run a sandbox spec here, or say it is too big for a request."""
        spec = self._spec(kind, request)
        work = customer_days(spec, self.config.settings.monte_carlo_runs)
        if work > self.limits.inline_customer_days:
            return Deferred(
                f"{work:.3g} customer-days is above the inline budget of "
                f"{self.limits.inline_customer_days:.3g}"
            )
        return self._run(kind, spec, SerialExecutor(), None)

    def _background_sandbox(
        self, kind: str, request: SandboxRequest, progress: Progress
    ) -> SandboxResult:
        spec = self._spec(kind, request)
        with self.executor(f"http-{kind}") as executor:
            return self._run(
                kind, spec, executor, lambda done, total: progress(done / max(total, 1), None)
            )

    def validate_request(self, operation: str, request: Any) -> None:
        """Everything a background run would refuse, checked before its 202 (the edge calls it)."""
        if operation == "what_if_sim":
            self._sim_spec(request)
        elif operation.startswith("sandbox_"):
            self._spec(operation.removeprefix("sandbox_"), request)

    def _spec(self, kind: str, request: SandboxRequest) -> Any:
        """The core spec: ``environmentId`` resolved (stored ones too), limits checked, every
        model's segment overrides naming a segment of the environment."""
        request.check(self.limits)
        fields = request.core_fields()
        if request.environment_id is not None:
            fields["environment"] = self.resolve(request.environment_id)
        spec = self._artifacts().resolve_spec(parse_sandbox_spec(fields, kind))
        check_segments(spec)
        work = customer_days(spec, self.config.settings.monte_carlo_runs)
        check_limit("customer_days", work, self.limits.max_customer_days)
        return spec

    def _artifacts(self) -> ArtifactStore:
        """ONNX models in a spec name their artifact by hash; the bytes come from here."""
        settings = self.config.settings
        return ArtifactStore(self.store, settings.data_dir, max_bytes=settings.max_artifact_bytes)

    def _run(
        self, kind: str, spec: Any, executor: Any, progress: Callable[[int, int], None] | None
    ) -> SandboxResult:
        run = _SANDBOX[kind]
        result = run(spec, settings=self.config.settings, executor=executor, progress=progress)
        info = result.execution
        self.telemetry.simulated(
            f"sandbox_{kind}", result.replicates, info.customer_days, info.wall_seconds
        )
        return result

    def what_if_sim(self, request: SimWhatIfRequest) -> SimWhatIfResult | Deferred:
        """Run a simulation what-if here, or say it is too big for a request."""
        spec, work = self._sim_spec(request)
        if work > self.limits.inline_customer_days:
            return Deferred(
                f"{work:.3g} customer-days is above the inline budget of "
                f"{self.limits.inline_customer_days:.3g}"
            )
        return self._what_if_sim(spec, serial_evaluate)

    def _background_what_if_sim(
        self, request: SimWhatIfRequest, progress: Progress
    ) -> SimWhatIfResult:
        spec, _ = self._sim_spec(request)
        runs = 2 * spec.settings.replicates  # baseline and changed twin per replicate
        done = 0

        def finished(_position: int, _run: Any) -> None:
            nonlocal done
            done += 1
            progress(done / runs, None)

        with self.executor("http-what_if_sim", finished) as executor:
            return self._what_if_sim(spec, executor_evaluate(executor))

    def _sim_spec(self, request: SimWhatIfRequest) -> tuple[SimWhatIfSpec, float]:
        """The core spec (``environmentId`` resolved, stored ones too), limits checked, and
        the customer-days it will simulate."""
        request.check(self.limits)
        resolved = (
            self.resolve(request.environment_id) if request.environment_id is not None else None
        )
        spec = request.to_spec(resolved)
        return spec, request.check_size(spec, self.limits)

    def _what_if_sim(self, spec: SimWhatIfSpec, evaluate: Evaluate) -> SimWhatIfResult:
        simulated = 0.0

        def counted(specs: list[SimulationSpec]) -> list[SimulationResult]:
            nonlocal simulated
            results = evaluate(specs)
            simulated += sum(r.summary.customer_days for r in results)
            return results

        started = time.perf_counter()
        result = run_what_if_sim(spec, evaluate=counted)
        self.telemetry.simulated(
            "what_if_sim",
            2 * spec.settings.replicates,
            simulated,
            time.perf_counter() - started,
        )
        return result

    def _background_retrain(self, request: RetrainModelRequest, progress: Progress) -> RetrainRun:
        """Retrain the family in this replica (in-process successive halving), keep the run."""
        found = self.store.find(ANALYSES, request.analysis_id)
        if found is None:
            raise NotFound("analysis", request.analysis_id)
        core = RetrainRequest(
            family=request.family,
            samples=request.samples,
            seed=request.seed,
            data=DataSource(rows=request.rows, seed=request.seed),
            register_version=request.register_version,
        )

        def search(spec: RetrainSpec, data: TrainingData) -> RetrainResult:
            budget, done = spec.samples * spec.max_batches, 0  # batches if none stopped early

            def report(name: str, batch: int, score: Paired) -> None:
                nonlocal done
                done += 1
                progress(min(0.95, done / budget), f"{name} batch {batch}: {score.gain:+.4g}")

            return run_search(spec, data=data, progress=report)

        registry = Registry(self.store, settings=self.config.settings)
        return retrain(registry, self.store, core, found.to_model(FailureAnalysis), search)

    def list_environments(self, limit: int = 200) -> EnvironmentList:
        items = [self._preset_detail(d) for d in DOMAINS]
        summaries: list[EnvironmentSummary] = [
            EnvironmentSummary.model_validate(d.model_dump(exclude={"environment"})) for d in items
        ]
        for stored in self.store.query(ENVIRONMENTS, limit=limit):
            detail = self._stored_detail(stored)
            summaries.append(
                EnvironmentSummary.model_validate(detail.model_dump(exclude={"environment"}))
            )
        return EnvironmentList(environments=summaries)

    def get_environment(self, environment_id: str) -> EnvironmentDetail:
        return self._detail(environment_id)

    def create_environment(self, request: EnvironmentCreate) -> EnvironmentDetail:
        ident = request.id or f"env-{uuid.uuid4().hex[:12]}"
        if ident in DOMAINS:
            raise InvalidInput("id", f"{ident!r} is a preset name; choose another id")
        if request.preset is not None:
            try:
                env = environment(request.preset, **request.changes)
            except ValidationError as exc:
                raise invalid_input(exc, request.changes, field="changes") from exc
        else:
            assert request.environment is not None  # guaranteed by the model's validator
            env = request.environment
        stored = self.store.put_model(
            ENVIRONMENTS, ident, env, expected_version=None if request.replace else 0
        )
        return self._stored_detail(stored)

    def resolve(self, environment_id: str) -> BusinessEnvironment:
        """The environment behind an id (preset or stored); NotFound names the id."""
        return self._detail(environment_id).environment

    def _detail(self, environment_id: str) -> EnvironmentDetail:
        if environment_id in DOMAINS:
            return self._preset_detail(environment_id)
        stored = self.store.find(ENVIRONMENTS, environment_id)
        if stored is None:
            raise NotFound("environment", environment_id)
        return self._stored_detail(stored)

    @staticmethod
    def _preset_detail(domain: str) -> EnvironmentDetail:
        p = preset(domain)
        env = p.environment
        return EnvironmentDetail(
            id=domain,
            source="preset",
            name=env.name,
            domain=env.domain,
            decision=p.decision,
            primary_kpis=p.primary_kpis,
            initial_customers=env.initial_customers,
            environment=env,
        )

    def _stored_detail(self, stored: StoredDocument) -> EnvironmentDetail:
        env = stored.to_model(BusinessEnvironment)
        calibrated = self.store.find(CALIBRATIONS, stored.id) is not None
        return EnvironmentDetail(
            id=stored.id,
            source="calibrated" if calibrated else "stored",
            name=env.name,
            domain=env.domain,
            decision=env.decision,
            initial_customers=env.initial_customers,
            version=stored.version,
            updated_at=stored.updated_at,
            environment=env,
        )


def _environment_of(spec: Any) -> BusinessEnvironment:
    env = spec.environment
    return env if isinstance(env, BusinessEnvironment) else preset(env).environment


def check_segments(spec: Any) -> None:
    """Refuse a model overriding a segment the environment does not have, naming the request
    path (``challenger.segment_overrides.vip``) — before any simulation starts."""
    known = {s.name for s in _environment_of(spec).segments}
    models: list[tuple[str, Any]] = [
        (name, getattr(spec, name, None)) for name in ("model", "baseline", "challenger")
    ]
    for name in ("models", "variants"):
        models += [(field_path(name, i), m) for i, m in enumerate(getattr(spec, name, None) or [])]
    for path, model in models:
        for segment in getattr(model, "segment_overrides", None) or {}:
            if segment not in known:
                raise InvalidInput(
                    field_path(path, "segment_overrides", segment),
                    f"unknown segment {segment!r}; the environment has {sorted(known)}",
                )


def customer_days(spec: Any, default_replicates: int) -> float:
    """Simulated customer-days a sandbox spec will cost, at most (initial + arrivals, × runs)."""
    env = _environment_of(spec)
    customers = spec.customers if spec.customers is not None else env.initial_customers
    per_run = run_customer_days(customers, env.acquisition.rate_per_day, spec.days)
    early_stop = getattr(spec, "early_stop", None)
    replicates = spec.replicates or default_replicates
    if early_stop is not None:
        replicates = max(replicates, early_stop.max_replicates)
    arms = {"test": 1, "compare": 2, "ab_test": 1}.get(spec.kind)
    if arms is None:
        arms = len(spec.scenarios) * len(spec.models)
    return float(per_run * replicates * arms)
