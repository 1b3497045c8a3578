"""The orchestrator: a plan's actions dispatched to agent actors, with timeouts, retries, cancel.

One actor per agent kind, placed anywhere on the cluster (``SPREAD``). Each action gets a
deadline; the outcome is one of

* ``completed`` — the agent's candidates;
* ``failed`` — the agent raised (its error is deterministic, so it is not retried), or its actor
  died more than ``max_retries`` times;
* ``timed_out`` — the deadline passed: the hung actor is killed (it cannot be trusted with the
  next action) and the plan goes on;
* ``cancelled`` — :meth:`Orchestrator.cancel` was called before or during the action.

A crashed actor (node lost, process killed) is replaced by a fresh one — wherever Ray places it
— and the action is re-run: agents are pure functions of (action, context), so the retry gives
the same candidates. Every result is written to the Store as it is known.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from actors.agents import AgentActor
from twinloop.agents.protocol import AgentContext
from twinloop.agents.registry import agent_path, discover
from twinloop.agents.results import ACTION_RESULTS, ActionResult
from twinloop.errors import TwinloopError
from twinloop.store import Store
from twinloop.strategy.models import Action, Plan

POLL_SECONDS = 0.1


class Orchestrator:
    """Runs plans on agent actors; ``actor(kind)`` is the live actor of a kind (tests kill it)."""

    def __init__(
        self,
        *,
        store: Store | None = None,
        agents: Mapping[str, str] | None = None,
        timeout_s: float = 600.0,
        timeouts: Mapping[str, float] | None = None,
        max_retries: int = 2,
        num_cpus: float = 1.0,
    ) -> None:
        if timeout_s <= 0 or max_retries < 0 or num_cpus < 0:
            raise ValueError("timeout_s must be > 0, max_retries and num_cpus >= 0")
        self.store = store
        self.paths = dict(agents) if agents is not None else discover()
        self.timeout_s = timeout_s
        self.timeouts = dict(timeouts or {})
        self.max_retries = max_retries
        self.num_cpus = num_cpus
        self.label = uuid.uuid4().hex[:8]
        self._actors: dict[str, Any] = {}
        self._cancelled = threading.Event()
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- actors
    def actor(self, kind: str) -> Any:
        """The actor of an agent kind, started on first use."""
        with self._lock:
            if kind not in self._actors:
                path = agent_path(kind, self.paths)
                self._actors[kind] = AgentActor.options(
                    name=f"twinloop-agent-{self.label}-{kind}",
                    num_cpus=self.num_cpus,
                    max_restarts=0,
                    scheduling_strategy="SPREAD",
                ).remote(kind, path)
            return self._actors[kind]

    def _drop(self, kind: str, kill: bool) -> None:
        with self._lock:
            handle = self._actors.pop(kind, None)
        if handle is not None and kill:
            ray.kill(handle, no_restart=True)

    def cancel(self) -> None:
        """Stop: the running action ends ``cancelled``, and so does every action not started."""
        self._cancelled.set()

    def shutdown(self) -> None:
        for kind in list(self._actors):
            self._drop(kind, kill=True)

    # ----------------------------------------------------------------- running
    def run(self, plan: Plan, context: AgentContext) -> list[ActionResult]:
        """Every action of the plan, in rank order; one result per action, stored as it lands."""
        out = []
        for action in plan.actions:
            result = self.run_action(plan.id, action, context)
            if self.store is not None:
                self.store.put_model(ACTION_RESULTS, result.store_id, result)
            out.append(result)
        return out

    def _result(self, plan_id: str, action: Action, **fields: Any) -> ActionResult:
        return ActionResult(plan_id=plan_id, action_id=action.id, agent=action.agent, **fields)

    def run_action(self, plan_id: str, action: Action, context: AgentContext) -> ActionResult:
        """One action on its agent's actor, with the deadline, retries and cancel above (the
        loop's ``candidates`` stage asks through this; it stores the result itself)."""
        timeout = self.timeouts.get(action.agent, self.timeout_s)
        attempts = 0
        last_error = ""
        while attempts <= self.max_retries:
            if self._cancelled.is_set():
                return self._result(plan_id, action, status="cancelled", attempts=attempts)
            attempts += 1
            try:
                handle = self.actor(action.agent)
            except TwinloopError as exc:
                return self._result(
                    plan_id, action, status="failed", attempts=attempts, error=str(exc)
                )
            ref = handle.propose.remote(action, context)
            state = self._wait(ref, timeout)
            if state == "timed_out":
                self._drop(action.agent, kill=True)
                return self._result(
                    plan_id,
                    action,
                    status="timed_out",
                    attempts=attempts,
                    error=f"no answer within {timeout:g} s",
                )
            if state == "cancelled":
                self._drop(action.agent, kill=True)
                return self._result(plan_id, action, status="cancelled", attempts=attempts)
            try:
                found = ray.get(ref)
            except RayActorError as exc:  # the actor died: a fresh one re-runs the action
                self._drop(action.agent, kill=False)
                last_error = f"agent actor died: {type(exc).__name__}: {str(exc)[:300]}"
                continue
            except RayTaskError as exc:  # the agent raised: deterministic, not retried
                cause = exc.cause if exc.cause is not None else exc
                return self._result(
                    plan_id,
                    action,
                    status="failed",
                    attempts=attempts,
                    error=f"{type(cause).__name__}: {cause}",
                )
            return self._result(
                plan_id, action, status="completed", attempts=attempts, candidates=tuple(found)
            )
        return self._result(
            plan_id,
            action,
            status="failed",
            attempts=attempts,
            error=f"{last_error} ({attempts} attempts)",
        )

    def _wait(self, ref: Any, timeout: float) -> str:
        """'ready', 'timed_out' or 'cancelled', polling so a cancel is seen promptly."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timed_out"
            ready, _ = ray.wait([ref], timeout=min(POLL_SECONDS, left))
            if ready:
                return "ready"
            if self._cancelled.is_set():
                return "cancelled"
