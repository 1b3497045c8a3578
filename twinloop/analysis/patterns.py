"""Failure patterns across tests: a signature per analysis, similar past analyses, named patterns.

A **signature** is a weighted set of tokens describing a failure: its failure types (weight 1)
and their severities (0.5), its metric chains (1), its segment causes (0.5 for the combination,
0.25 for the dimensions involved) and its data-quality causes (0.5). Two analyses are similar
when the weighted Jaccard index ``Σ min(w_a, w_b) / Σ max(w_a, w_b)`` of their signatures
reaches ``similarity_threshold`` (0.5).

**Named patterns** are rules over a signature (``latency_chain``: a chain from latency, …;
``types.<kinds>``: the exact set of failing metric kinds). Each is a Store document (kind
``patterns``) listing the experiments it was seen in; it is *recurring* once seen in two or more.

The **Pattern Detection Rate** is the share of stored analyses in which something known was
recognised: a similar earlier analysis or a named pattern seen before. Signatures live under
kind ``signatures`` with the experiment id, so re-analysing an experiment replaces its signature
and moves its pattern memberships, never counting it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import Field

from twinloop.analysis.causes import RootCause
from twinloop.analysis.chains import MetricChain
from twinloop.analysis.failures import FailureType
from twinloop.contract import FrozenModel
from twinloop.store import Store

SIGNATURES = "signatures"
PATTERNS = "patterns"
# code: (name, description)
CATALOGUE: dict[str, tuple[str, str]] = {
    "latency_chain": (
        "Slow model drives users away",
        "a chain from latency through satisfaction to conversion or revenue",
    ),
    "accuracy_chain": (
        "Worse decisions hurt satisfaction",
        "a chain from accuracy through satisfaction onwards",
    ),
    "segment_blind_spot": (
        "Segment blind spot",
        "the loss is concentrated in a combination of segment values",
    ),
    "cost_blowup": ("Cost blow-up", "the loser costs more (cost or calls per unit)"),
    "broken_assignment": ("Broken assignment", "sample-ratio mismatch against the plan"),
    "novelty_effect": ("Novelty or change aversion", "the loss is concentrated in the first days"),
    "untested_loss": ("Loss without significance", "point values only: nothing could be tested"),
}


class Signature(FrozenModel):
    """What one analysis looked like, for matching later analyses against it."""

    experiment_id: str
    tokens: dict[str, float]
    patterns: tuple[str, ...]
    matched_previous: bool = Field(description="a similar analysis or known pattern was found")


class Pattern(FrozenModel):
    """A named failure pattern and the experiments it was seen in (a Store document)."""

    code: str
    name: str
    description: str
    experiments: tuple[str, ...]

    @property
    def count(self) -> int:
        """How many experiments showed it."""
        return len(self.experiments)


class SimilarAnalysis(FrozenModel):
    """A past analysis that resembles this one."""

    experiment_id: str
    similarity: float
    shared: tuple[str, ...] = Field(description="tokens both signatures carry")


class PatternSeen(FrozenModel):
    """A named pattern in this analysis and how often it was seen (this one included)."""

    code: str
    name: str
    description: str
    occurrences: int
    recurring: bool
    other_experiments: tuple[str, ...]


class PatternReport(FrozenModel):
    """Patterns across tests: the signature, similar analyses, named patterns, detection rate."""

    signature: dict[str, float]
    similar: tuple[SimilarAnalysis, ...]
    similar_count: int = Field(description="past analyses at or above the similarity threshold")
    patterns: tuple[PatternSeen, ...]
    pattern_detection_rate: float | None = Field(
        description="share of stored analyses in which a known pattern was recognised"
    )
    analyses_compared: int
    notes: tuple[str, ...] = ()


def signature_tokens(
    failures: Sequence[FailureType], chains: Sequence[MetricChain], causes: Sequence[RootCause]
) -> dict[str, float]:
    """The weighted token set of an analysis (see the module docstring)."""
    tokens: dict[str, float] = {}
    for failure in failures:
        kind = failure.type if failure.type != "custom" else f"custom.{failure.metric}"
        tokens[f"failure:{kind}"] = 1.0
        tokens[f"severity:{kind}:{failure.severity}"] = 0.5
    for chain in chains:
        tokens["chain:" + ">".join(chain.nodes)] = 1.0
    for cause in causes:
        if cause.segment is not None:
            tokens[f"segment:{cause.segment.label}"] = 0.5
            tokens["dims:" + "&".join(sorted(cause.segment.element))] = 0.25
        elif cause.quality is not None:
            tokens[f"quality:{cause.quality.code}"] = 0.5
    return tokens


def named_patterns(
    failures: Sequence[FailureType],
    chains: Sequence[MetricChain],
    causes: Sequence[RootCause],
    untested: bool,
) -> list[str]:
    """Codes of the catalogue patterns (and the ``types.…`` pattern) this analysis shows."""
    codes = []
    roots = {c.nodes[0] for c in chains}
    if "latency" in roots:
        codes.append("latency_chain")
    if "accuracy" in roots:
        codes.append("accuracy_chain")
    if any(c.kind == "segment" for c in causes):
        codes.append("segment_blind_spot")
    kinds = {f.type for f in failures}
    if "cost" in kinds or "calls" in roots:
        codes.append("cost_blowup")
    quality = {c.quality.code for c in causes if c.quality is not None}
    if "srm" in quality:
        codes.append("broken_assignment")
    if "novelty" in quality:
        codes.append("novelty_effect")
    if untested and failures:
        codes.append("untested_loss")
    if kinds:
        codes.append("types." + "-".join(sorted(kinds)))
    return codes


def pattern_info(code: str) -> tuple[str, str]:
    """Name and description of a pattern code."""
    if code in CATALOGUE:
        return CATALOGUE[code]
    kinds = code.removeprefix("types.").split("-")
    return (" + ".join(kinds) + " failure", "the same set of failing metric kinds")


def similarity(a: dict[str, float], b: dict[str, float]) -> float:
    """Weighted Jaccard index of two signatures (1 = identical, 0 = nothing shared)."""
    keys = a.keys() | b.keys()
    top = sum(max(a.get(k, 0.0), b.get(k, 0.0)) for k in keys)
    if top == 0:
        return 0.0
    return sum(min(a.get(k, 0.0), b.get(k, 0.0)) for k in keys) / top


def match(
    experiment_id: str,
    tokens: dict[str, float],
    codes: Sequence[str],
    store: Store | None,
    threshold: float,
    max_matches: int,
) -> PatternReport:
    """Compare with every stored signature and pattern; reads only, writes nothing."""
    if store is None:
        seen = [_seen(code, ()) for code in codes]
        return PatternReport(
            signature=tokens,
            similar=(),
            similar_count=0,
            patterns=tuple(seen),
            pattern_detection_rate=None,
            analyses_compared=0,
            notes=("no store: nothing to compare with",),
        )
    past = [
        s
        for s in store.query_models(SIGNATURES, Signature, order="oldest")
        if s.experiment_id != experiment_id
    ]
    scored = [
        SimilarAnalysis(
            experiment_id=s.experiment_id,
            similarity=similarity(tokens, s.tokens),
            shared=tuple(sorted(tokens.keys() & s.tokens.keys())),
        )
        for s in past
    ]
    similar = sorted(
        (m for m in scored if m.similarity >= threshold),
        key=lambda m: (-m.similarity, m.experiment_id),
    )
    seen = []
    for code in codes:
        stored = store.find_model(PATTERNS, code, Pattern)
        others = tuple(e for e in (stored.experiments if stored else ()) if e != experiment_id)
        seen.append(_seen(code, others))
    matched = bool(similar) or any(p.other_experiments for p in seen)
    detected = sum(s.matched_previous for s in past) + matched
    return PatternReport(
        signature=tokens,
        similar=tuple(similar[:max_matches]),
        similar_count=len(similar),
        patterns=tuple(seen),
        pattern_detection_rate=detected / (len(past) + 1),
        analyses_compared=len(past),
    )


def _seen(code: str, others: Sequence[str]) -> PatternSeen:
    name, description = pattern_info(code)
    return PatternSeen(
        code=code,
        name=name,
        description=description,
        occurrences=len(others) + 1,
        recurring=len(others) + 1 >= 2,
        other_experiments=tuple(sorted(others)),
    )


def record(store: Store, experiment_id: str, report: PatternReport) -> None:
    """Keep the signature and move the experiment's pattern memberships to this analysis's."""
    codes = tuple(p.code for p in report.patterns)
    matched = report.similar_count > 0 or any(p.other_experiments for p in report.patterns)
    previous = store.find_model(SIGNATURES, experiment_id, Signature)
    for code in sorted(set(previous.patterns if previous else ()) - set(codes)):
        store.update_model(PATTERNS, code, Pattern, _membership(code, experiment_id, add=False))
    for code in codes:
        store.update_model(PATTERNS, code, Pattern, _membership(code, experiment_id, add=True))
    signature = Signature(
        experiment_id=experiment_id,
        tokens=report.signature,
        patterns=codes,
        matched_previous=matched,
    )
    store.put_model(SIGNATURES, experiment_id, signature)


def _membership(code: str, experiment_id: str, *, add: bool) -> Callable[[Pattern | None], Pattern]:
    """A pure update adding or removing one experiment from a pattern document."""

    def step(current: Pattern | None) -> Pattern:
        name, description = pattern_info(code)
        experiments = set(current.experiments) if current else set()
        if add:
            experiments.add(experiment_id)
        else:
            experiments.discard(experiment_id)
        return Pattern(
            code=code, name=name, description=description, experiments=tuple(sorted(experiments))
        )

    return step
