"""The customer-lifecycle engine: arrival → interaction → transaction → churn, one step at a time.

Vectorised over customers (no per-customer Python loop). Each random quantity has its own child
stream of one ``SeedSequence``, and every draw is sized by something no model can change (the
number of slots or of interaction candidates), so two runs with the same seed see the same
customers and the same draws whatever the models do: common random numbers for head-to-heads.
The equations are written out in docs/simulator.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
from numpy.typing import NDArray

from twinloop.contract import SECONDS_PER_DAY
from twinloop.sim.draws import categorical, percentiles, threshold
from twinloop.sim.effects import decision_kinds, target_multiplier
from twinloop.sim.groundtruth import decision_thresholds, intent_probability, predictor_hits
from twinloop.sim.kpis import KpiRecorder, SimulationResult, SimulationSummary, StepKpis
from twinloop.sim.models import Predictor, load_predictors
from twinloop.sim.pacing import Pacer
from twinloop.sim.population import Population
from twinloop.sim.scenario import Conditions, conditions_at
from twinloop.sim.spec import SimulationSpec
from twinloop.sim.state import CellTables, Contacts, Sales, SegmentTables, VariantTotals
from twinloop.sim.units import units_table

STREAMS = (
    "arrivals",
    "assignment",
    "features",
    "slots",
    "decision",
    "latency",
    "conversion",
    "order_value",
    "intent",
    "failure",
    "thompson",
)


class Simulation:
    """One business universe. ``reset`` re-seeds only when given a seed; ``step`` advances a tick.

    Invariant: after ``reset(seed=s)``, the sequence of ``step()`` outputs is a pure function of
    (spec, s).
    """

    def __init__(self, spec: SimulationSpec, predictors: list[Predictor | None] | None = None):
        self.spec = spec
        env = spec.environment
        self.env = env
        self.variants = [m.name for m in spec.models]
        self.dt = 1.0 / spec.steps_per_day
        if predictors is None:
            predictors = load_predictors(spec.models, env.n_features + len(env.segments))
        self.predictors = predictors
        self._needs_features = any(p is not None for p in predictors)
        self.segments = SegmentTables.build(env, self.dt)
        self.cells = CellTables.build(spec.models, env.segments)
        self.cost_per_call = np.array([m.cost_per_call for m in spec.models])
        self.reset(seed=spec.seed)

    # ----------------------------------------------------------------- set-up
    def _churn_probability(
        self,
        segment: NDArray[np.integer],
        satisfaction: NDArray[np.float32],
        boost: NDArray[np.float64] | None,
    ) -> NDArray[np.float64]:
        """P(churn within one step) = 1 − exp(−h·dt), h = base·m_seg·exp(k(s_ref − s))·boost."""
        env = self.env
        hazard = (env.churn.base_hazard_per_day * self.segments.churn[segment]).astype(np.float32)
        k = env.churn.satisfaction_sensitivity
        if k > 0:
            hazard = hazard * np.exp(k * (env.satisfaction.reference - satisfaction))
        if boost is not None:
            hazard = hazard * boost.astype(np.float32)
        return -np.expm1(-hazard * np.float32(self.dt))  # type: ignore[no-any-return]

    def reset(self, *, seed: int | None = None) -> None:
        """Empty the world and add the initial customers; re-seed only when ``seed`` is given."""
        if seed is not None:
            self.seed = seed
            children = np.random.SeedSequence(seed).spawn(len(STREAMS))
            self.rng = {
                n: np.random.Generator(np.random.PCG64(c))
                for n, c in zip(STREAMS, children, strict=True)
            }
        env, spec = self.env, self.spec
        expected_arrivals = env.acquisition.rate_per_day * spec.days * 1.3 + 64
        self.pop = Population(
            int(env.initial_customers + expected_arrivals),
            env.n_features,
            features=self._needs_features,
            units=spec.record_units,
        )
        n_var = len(self.variants)
        self.weights = np.array(spec.weights, dtype=np.float64)
        self.t = 0
        self.totals = VariantTotals.zeros(n_var)
        self.recorder = KpiRecorder(spec.n_steps, self.variants, spec.steps_per_day)
        shares = np.array([s.share for s in env.segments])
        self._arrive(env.initial_customers, shares, step=0)

    def _arrive(self, count: int, shares: NDArray[np.float64], step: int) -> NDArray[np.float64]:
        rng = self.rng
        segment = categorical(rng["arrivals"], shares, count)
        channel = categorical(rng["arrivals"], self.segments.channel_shares, count)
        variant = categorical(rng["assignment"], self.weights, count)
        features = None
        if self._needs_features:
            noise = rng["features"].standard_normal((count, self.env.n_features), dtype=np.float32)
            features = (
                self.segments.feature_mean[segment]
                + self.segments.feature_std[segment, None] * noise
            )
        s0 = self.env.satisfaction.initial
        interact = self.segments.interact_p[segment]
        churn = self._churn_probability(segment, np.full(count, s0, dtype=np.float32), None)
        self.pop.add(
            segment, channel, variant, threshold(interact), threshold(churn), s0, step, features
        )
        per_variant = np.bincount(variant, minlength=len(self.variants)).astype(np.float64)
        self.totals.active += per_variant
        self.totals.satisfaction_sum += per_variant * s0
        self.totals.assigned += per_variant.astype(np.int64)
        acquisition_cost = np.bincount(
            variant, weights=self.segments.channel_cpa[channel], minlength=len(self.variants)
        )
        return np.stack([per_variant, acquisition_cost])

    # ------------------------------------------------------------------ a step
    def _decide(
        self,
        idx: NDArray[np.int64],
        seg: NDArray[np.int16],
        var: NDArray[np.int16],
        cell: NDArray[np.intp],
        alive: NDArray[np.bool_],
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_] | None, NDArray[np.bool_] | None]:
        """Whether each decision is right; the intent and which decisions a predictor scored."""
        rng = self.rng
        u_decision = rng["decision"].random(alive.size, dtype=np.float32)[alive]
        correct = u_decision < self.cells.accuracy.take(cell)
        intent = scored = None
        if self._needs_features:
            u_intent = rng["intent"].random(alive.size)[alive]
            assert self.pop.features is not None
            x = self.pop.features[idx]
            intent = u_intent < intent_probability(self.env, x, seg)
            scored = np.zeros(correct.size, dtype=np.bool_)
            for v, predictor in enumerate(self.predictors):
                mine = var == v
                if predictor is not None and mine.any():
                    hits = predictor_hits(
                        self.env, predictor, self.variants[v], x[mine], seg[mine], intent[mine],
                        decision_thresholds(self.env, self.spec.models[v]),
                    )  # fmt: skip
                    correct[mine], scored[mine] = hits, True
        return correct, intent, scored

    def step(self) -> list[StepKpis]:
        """Advance one tick; returns that tick's KPIs, one entry per variant."""
        t = self.t
        cond = conditions_at(self.env, t * self.dt)
        if self.spec.allocation_policy == "thompson" and t > 0:
            self._thompson_update()
        new_per_var, acq_cost = self._arrivals(cond)
        contacts = self._interactions(cond)
        sales = self._transactions(cond, contacts)
        churned, churned_per_var = self._churn(contacts, sales)
        if self.pop.units:
            self.pop.record(contacts, sales, churned, t)
        row = self._kpis(contacts, sales, new_per_var, acq_cost, churned_per_var)
        self.t += 1
        return self.recorder.record(t, row)

    def _arrivals(self, cond: Conditions) -> NDArray[np.float64]:
        """1. Poisson arrivals this tick; (new customers, acquisition cost) per variant."""
        lam = self.env.acquisition.rate_per_day * cond.arrival_multiplier * self.dt
        count = int(self.rng["arrivals"].poisson(lam)) if lam > 0 else 0
        return self._arrive(count, cond.segment_shares, self.t)

    def _interactions(self, cond: Conditions) -> Contacts:
        """2. Who interacts, whether the model decides right, how long it takes, how it feels."""
        env, pop, rng = self.env, self.pop, self.rng
        # One 64-bit draw per slot: low half decides interaction, high half churn. Sized by
        # slots, never by what a model did, so draws stay common across models.
        n = pop.n
        bits = rng["slots"].bit_generator.random_raw(n).view(np.uint32)
        interact_bits, churn_bits = bits[0::2], bits[1::2]
        limit = pop.interact_threshold[:n]
        if cond.interaction_multiplier != 1.0:
            limit = threshold(limit * cond.interaction_multiplier)
        # Candidates are chosen over all slots (churned ones too) and every per-interaction draw
        # is sized by them: the draws stay aligned across models even after churn diverges.
        cand = np.flatnonzero(interact_bits < limit)
        alive = pop.active[cand]
        idx = cand[alive]
        seg, var = pop.segment[idx], pop.variant[idx]
        # One flat (variant, segment) cell index serves every per-cell table lookup below.
        cell = var.astype(np.intp) * len(env.segments) + seg
        correct, intent, scored = self._decide(idx, seg, var, cell, alive)
        z_lat = rng["latency"].standard_normal(cand.size, dtype=np.float32)[alive]
        latency = self.cells.latency_p50.take(cell) * np.exp(
            self.cells.latency_sigma.take(cell) * z_lat
        )
        if cond.outage_fraction > 0:
            failed = rng["failure"].random(cand.size)[alive] < cond.outage_fraction
            correct &= ~failed
            latency[failed] = env.satisfaction.timeout_ms
        s_new = self._satisfy(idx, var, correct, latency)
        kind = decision_kinds(env.transaction, correct, intent, scored)
        return Contacts(
            n, churn_bits, cand.size, alive, idx, seg, var, correct, latency, s_new, kind
        )

    def _satisfy(
        self,
        idx: NDArray[np.int64],
        var: NDArray[np.int16],
        correct: NDArray[np.bool_],
        latency: NDArray[np.float32],
    ) -> NDArray[np.float32]:
        """Satisfaction: an exponential average of experience (decision right, latency felt)."""
        sd, pop = self.env.satisfaction, self.pop
        experience = sd.accuracy_weight * correct + (1.0 - sd.accuracy_weight) * np.exp(
            -latency / sd.latency_tolerance_ms
        )
        s_old = pop.satisfaction[idx]
        s_new: NDArray[np.float32] = (
            (1.0 - sd.learning_rate) * s_old + sd.learning_rate * experience
        ).astype(np.float32)
        pop.satisfaction[idx] = s_new
        self.totals.satisfaction_sum += np.bincount(
            var, weights=s_new - s_old, minlength=len(self.variants)
        )
        return s_new

    def _transactions(self, cond: Conditions, contacts: Contacts) -> Sales:
        """3. Which interactions convert, and the order value of each."""
        env, rng, seg = self.env, self.rng, contacts.segment
        tr, sd = env.transaction, env.satisfaction
        uplift = target_multiplier(tr, contacts.correct, contacts.kind)
        p_conv = (
            tr.base_conversion
            * self.segments.conversion[seg]
            * (np.maximum(contacts.satisfaction, 1e-6) / sd.reference) ** tr.satisfaction_elasticity
        )
        if env.decision_target == "conversion":
            p_conv = p_conv * uplift
        if cond.price_change != 0.0:
            p_conv = p_conv * (1.0 + cond.price_change) ** (-tr.price_elasticity)
        converted = rng["conversion"].random(contacts.draws)[contacts.alive] < p_conv
        z_val = rng["order_value"].standard_normal(contacts.draws)[contacts.alive]
        sigma = tr.order_value_sigma
        value = (
            tr.average_order_value
            * self.segments.value[seg]
            * (1.0 + cond.price_change)
            * cond.order_value_multiplier
            * np.exp(sigma * z_val - 0.5 * sigma * sigma)
        )
        return Sales(uplift, converted, np.where(converted, value, 0.0))

    def _churn(
        self, contacts: Contacts, sales: Sales
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """4. Who leaves this tick; (their slots, how many per variant).

        Only interacting customers changed satisfaction, so only their thresholds are recomputed;
        a retention decision keeps its effect until the customer's next contact.
        """
        pop, n, n_var, idx = self.pop, contacts.slots, len(self.variants), contacts.idx
        boost = (2.0 - sales.uplift) if self.env.decision_target == "retention" else None
        pop.churn_threshold[idx] = threshold(
            self._churn_probability(contacts.segment, contacts.satisfaction, boost)
        )
        churned = np.flatnonzero((contacts.churn_bits < pop.churn_threshold[:n]) & pop.active[:n])
        pop.active[churned] = False
        churn_var = pop.variant[churned]
        churned_per_var = np.bincount(churn_var, minlength=n_var).astype(np.float64)
        self.totals.active -= churned_per_var
        self.totals.satisfaction_sum -= np.bincount(
            churn_var, weights=pop.satisfaction[churned], minlength=n_var
        )
        return churned, churned_per_var

    def _kpis(
        self,
        contacts: Contacts,
        sales: Sales,
        new_per_var: NDArray[np.float64],
        acq_cost: NDArray[np.float64],
        churned_per_var: NDArray[np.float64],
    ) -> dict[str, NDArray[np.float64]]:
        """5. The tick's KPI row, one value per variant."""
        n_var, var, latency = len(self.variants), contacts.variant, contacts.latency
        totals = self.totals
        calls = np.bincount(var, minlength=n_var).astype(np.float64)
        conversions = np.bincount(var, weights=sales.converted, minlength=n_var)
        totals.conversions += conversions
        totals.interactions += calls
        p50, p95 = np.zeros(n_var), np.zeros(n_var)
        for v in range(n_var):
            lat_v = latency if n_var == 1 else latency[var == v]
            if lat_v.size:
                p50[v], p95[v] = percentiles(lat_v)
        fixed = self.env.costs.fixed_per_day * self.dt * self.weights
        return {
            "active": totals.active.copy(),
            "new": new_per_var,
            "churned": churned_per_var,
            "interactions": calls,
            "conversions": conversions,
            "conversion_rate": np.divide(conversions, calls, out=np.zeros(n_var), where=calls > 0),
            "revenue": np.bincount(var, weights=sales.revenue, minlength=n_var),
            "satisfaction": np.divide(
                totals.satisfaction_sum,
                totals.active,
                out=np.zeros(n_var),
                where=totals.active > 0,
            ),
            "model_accuracy": np.divide(
                np.bincount(var, weights=contacts.correct, minlength=n_var),
                calls,
                out=np.zeros(n_var),
                where=calls > 0,
            ),
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "cost": calls * self.cost_per_call + acq_cost + fixed,
            "model_calls": calls,
        }

    def _thompson_update(self) -> None:
        """Probability matching on Beta posteriors of conversion per variant (for new arrivals)."""
        draws = self.rng["thompson"].beta(
            1.0 + self.totals.conversions[:, None],
            1.0 + (self.totals.interactions - self.totals.conversions)[:, None],
            size=(len(self.variants), 2000),
        )
        best = np.bincount(draws.argmax(axis=0), minlength=len(self.variants))
        self.weights = np.maximum(best / best.sum(), 1e-3)
        self.weights /= self.weights.sum()

    # ------------------------------------------------------------------ runs
    def stream(self, pacer: Pacer | None = None) -> Iterator[list[StepKpis]]:
        """Yield each step's KPIs while the run goes on (paced when a pacer is given)."""
        while self.t < self.spec.n_steps:
            if pacer is not None:
                pacer.wait_until(self.t * self.dt * SECONDS_PER_DAY)
            yield self.step()

    def run(
        self,
        on_step: Callable[[list[StepKpis]], None] | None = None,
        pacer: Pacer | None = None,
    ) -> SimulationResult:
        """Run to the end (from wherever the simulation is) and return the result."""
        start = time.perf_counter()
        for kpis in self.stream(pacer):
            if on_step is not None:
                on_step(kpis)
        wall = max(time.perf_counter() - start, 1e-9)
        return self.result(wall, pacer.speed if pacer else 0.0)

    def result(self, wall_seconds: float, paced_speed: float = 0.0) -> SimulationResult:
        spec = self.spec
        variants = self.recorder.summaries(self.totals.assigned, self.dt)
        customer_days = sum(v.customer_days for v in variants)
        simulated_seconds = self.recorder.steps_done * self.dt * SECONDS_PER_DAY
        summary = SimulationSummary(
            seed=self.seed,
            days=spec.days,
            steps=self.recorder.steps_done,
            environment=self.env.name,
            domain=self.env.domain,
            variants=variants,
            customer_days=customer_days,
            wall_seconds=wall_seconds,
            customer_days_per_second=customer_days / wall_seconds,
            acceleration=simulated_seconds / wall_seconds,
            paced_speed=paced_speed,
        )
        units = (
            units_table(self.pop, self.env, self.variants, self.dt) if spec.record_units else None
        )
        return SimulationResult(spec=spec, kpis=self.recorder.table(), units=units, summary=summary)


def simulate(spec: SimulationSpec, pacer: Pacer | None = None) -> SimulationResult:
    """Run a spec from its seed to the end."""
    return Simulation(spec).run(pacer=pacer)
