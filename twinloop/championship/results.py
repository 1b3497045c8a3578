"""What a championship produces: the pairwise matrix, ratings, gate verdicts and the decision.

``ChampionshipResult`` is a pure function of the spec, the models and the seed (no wall times in
it; those live in ``execution``), so the same seed gives the same result with one worker or
fifty; ``fingerprint()`` hashes it. ``ChampionshipDecision`` is the Store document: the result
plus its id, time and what happened to the ``challenger`` alias.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.sandbox.results import PairedKpi

Stage = Literal["round_robin", "confirmation"]
Verdict = Literal["promote", "keep_champion"]


class PairResult(FrozenModel):
    """Entrant ``a`` against entrant ``b`` on the primary KPI, paired by replicate (CRN)."""

    a: str
    b: str
    prob_a_better: float = Field(description="P(a is better than b), paired t posterior")
    win_rate_a: float = Field(description="Share of replicates a won (ties count ½)")
    difference: float = Field(description="Mean of a − b")
    lower: float
    upper: float


class Rating(FrozenModel):
    """A Bradley–Terry strength: log-odds of beating the champion in one replicate."""

    name: str
    rank: int
    score: float
    lower: float
    upper: float
    wins: float = Field(description="Replicates won over all opponents (ties ½)")
    games: int


class GateVerdict(FrozenModel):
    """One gate: what was measured, the bar, and whether it passed."""

    gate: str = Field(description="'primary', 'guardrail:<kpi>', 'segment:<name>', 'external:<n>'")
    passed: bool
    probability: float | None = Field(
        description="P(better) for the primary gate, P(harm within tolerance) for the others"
    )
    threshold: float | None
    relative_difference: float | None = None
    detail: str = ""


class CandidateReport(FrozenModel):
    """A candidate against the champion: the round robin's view and, for the top one, the gates."""

    name: str
    stage: Stage
    primary: PairedKpi
    gates: list[GateVerdict]
    passed: bool


class ExecutionInfo(FrozenModel):
    """How the run went (not part of the fingerprint)."""

    executor: str
    workers: int
    replicates_run: int
    wall_seconds: float
    replicate_seconds: float


class ChampionshipResult(FrozenModel):
    """Everything the championship computed; a pure function of its inputs and seed."""

    family: str
    environment: str
    champion: str
    entrants: list[str]
    primary_kpi: str
    seed: int
    replicates: int
    confirmation_replicates: int
    rating_method: str = "bradley_terry_map_newton_bootstrap"
    pairwise: list[PairResult]
    ratings: list[Rating]
    round_robin: list[CandidateReport]
    top_candidate: str | None
    confirmation: CandidateReport | None
    confirmation_seeds: list[int]
    verdict: Verdict
    reasons: list[str]
    execution: ExecutionInfo | None = None

    def fingerprint(self) -> str:
        """sha256 of the result without ``execution``: equal across worker counts."""
        body = self.model_dump_json(exclude={"execution"})
        return hashlib.sha256(body.encode("utf-8")).hexdigest()


class Promotion(FrozenModel):
    """What the decision did to the ``challenger`` alias."""

    requested: bool
    moved: bool = False
    alias: str = "challenger"
    previous: str | None = None
    version: str | None = None
    error: str | None = None


class ChampionshipDecision(FrozenModel):
    """The Store document of a championship: result, identity and the alias move."""

    id: str
    family: str
    created_at: float
    verdict: Verdict
    winner: str | None = Field(description="The version promoted to challenger, if any")
    reasons: list[str]
    promotion: Promotion
    fingerprint: str
    result: ChampionshipResult
