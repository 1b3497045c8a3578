"""Root causes with evidence: segments, metric chains and data-quality causes, ranked together.

Each candidate gets a ``confidence`` (how sure we are it is real) and a ``share`` (how much of
the loss it would explain); they are ranked by ``score = confidence × share``:

* a **segment** (one combination of segment values, with its findings on every metric where
  the localizer named it): confidence = the localizer's best posterior; share = its largest
  excess share of a metric's loss (the part beyond the loser's common effect), in [0, 1];
* a **metric chain**: confidence = the chain's (product of its nodes' probabilities); share =
  its root's Shapley contribution to the key metric's change through the graph fitted on the
  units (:mod:`.attribution`), clipped to [0, 1]; without per-unit rows 1/k when it is one of k
  chains through the key metric's node; 0.25 when it does not reach the key metric (a side
  story);
* a **data-quality cause** (SRM, a fading novelty effect): its own confidence and share (1 for
  SRM, which makes every effect suspect).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from twinloop.analysis.attribution import Contribution, LossAttribution
from twinloop.analysis.chains import MetricChain
from twinloop.analysis.quality import QualityFinding
from twinloop.analysis.segments import SegmentAnalysis, SegmentFinding
from twinloop.contract import FrozenModel

CauseKind = Literal["segment", "metric_chain", "data_quality"]
SIDE_CHAIN_SHARE = 0.25


class SegmentCause(FrozenModel):
    """One combination of segment values and what the loser does there, metric by metric."""

    element: dict[str, str]
    label: str
    findings: tuple[SegmentFinding, ...]


class RootCause(FrozenModel):
    """One explanation of the loss with its evidence, confidence and share of the loss."""

    rank: int
    id: str = Field(description="stable: 'segment:…', 'chain:…' or 'quality:…'")
    kind: CauseKind
    title: str
    confidence: float
    share: float = Field(description="share of the loss it would explain, in [0, 1]")
    score: float = Field(description="confidence × share: the ranking key")
    metrics: tuple[str, ...]
    segment: SegmentCause | None = None
    chain: MetricChain | None = None
    quality: QualityFinding | None = None
    contribution: Contribution | None = Field(
        default=None, description="a chain's part of the key metric's change (fitted graph)"
    )


def rank_root_causes(
    segments: Sequence[SegmentAnalysis],
    chains: Sequence[MetricChain],
    quality: Sequence[QualityFinding],
    limit: int,
    attribution: LossAttribution | None = None,
) -> list[RootCause]:
    """Every candidate cause, best score first, at most ``limit``."""
    causes = [
        *_segment_causes(segments),
        *_chain_causes(chains, attribution),
        *_quality_causes(quality),
    ]
    order = {"data_quality": 0, "metric_chain": 1, "segment": 2}
    causes.sort(key=lambda c: (-c.score, -c.confidence, order[c.kind], c.id))
    return [c.model_copy(update={"rank": i + 1}) for i, c in enumerate(causes[:limit])]


def _segment_causes(segments: Sequence[SegmentAnalysis]) -> list[RootCause]:
    grouped: dict[str, list[SegmentFinding]] = {}
    for analysis in segments:
        for finding in analysis.findings:
            grouped.setdefault(finding.label, []).append(finding)
    causes = []
    for label, findings in grouped.items():
        findings.sort(key=lambda f: -f.excess_share)
        share = max(min(max(f.excess_share for f in findings), 1.0), 0.0)
        confidence = max(f.confidence for f in findings)
        parts = [
            f"{f.metric} {f.relative_change:+.1%}"
            for f in findings
            if f.relative_change is not None
        ][:3]
        outside = findings[0].outside_relative_change
        title = f"segment {label}: " + ", ".join(parts)
        if outside is not None:
            title += f" ({findings[0].metric} {outside:+.1%} elsewhere)"
        causes.append(
            RootCause(
                rank=0,
                id=f"segment:{label}",
                kind="segment",
                title=title,
                confidence=confidence,
                share=share,
                score=confidence * share,
                metrics=tuple(f.metric for f in findings),
                segment=SegmentCause(
                    element=findings[0].element, label=label, findings=tuple(findings)
                ),
            )
        )
    return causes


def _chain_causes(
    chains: Sequence[MetricChain], attribution: LossAttribution | None
) -> list[RootCause]:
    through_key = sum(c.reaches_key for c in chains)
    parts = {
        chain_id: part
        for part in (attribution.contributions if attribution is not None else ())
        for chain_id in part.chains
    }
    causes = []
    for chain in chains:
        chain_id = "chain:" + ">".join(chain.nodes)
        part = parts.get(chain_id)
        share = 1.0 / through_key if chain.reaches_key else SIDE_CHAIN_SHARE
        if part is not None:
            share = min(max(part.share, 0.0), 1.0) if math.isfinite(part.share) else 0.0
        effects = ", ".join(f"{link.metric} {_signed(link.relative_loss)}" for link in chain.links)
        causes.append(
            RootCause(
                rank=0,
                id=chain_id,
                kind="metric_chain",
                title=f"{chain.label}: {effects}",
                confidence=chain.confidence,
                share=share,
                score=chain.confidence * share,
                metrics=tuple(link.metric for link in chain.links),
                chain=chain,
                contribution=part,
            )
        )
    return causes


def _signed(loss: float | None) -> str:
    return "changed" if loss is None else f"{loss:.1%} worse"


def _quality_causes(quality: Sequence[QualityFinding]) -> list[RootCause]:
    causes = []
    for finding in quality:
        if not finding.is_cause:
            continue
        confidence = finding.confidence if finding.confidence is not None else 0.5
        share = finding.share if finding.share is not None else 0.0
        suffix = f":{finding.metric}" if finding.metric else ""
        causes.append(
            RootCause(
                rank=0,
                id=f"quality:{finding.code}{suffix}",
                kind="data_quality",
                title=finding.message,
                confidence=confidence,
                share=share,
                score=confidence * share,
                metrics=(finding.metric,) if finding.metric else (),
                quality=finding,
            )
        )
    return causes
