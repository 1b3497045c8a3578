"""Plots of the improvement loop: the stage timeline and the canary's live intervals.

Same rules as ``plots``: plain rows in, a PNG ``data:`` URI out, no pyplot state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.ticker import FuncFormatter

from twinloop.report.plots import BAD, COLORS, GOOD, NEUTRAL, _figure, to_data_uri


@dataclass(frozen=True)
class StageBar:
    """One stage's wall time and whether it passed."""

    stage: str
    seconds: float
    passed: bool


@dataclass(frozen=True)
class CanaryPoint:
    """The canary's relative effect after a batch, with its confidence sequence."""

    units: int
    estimate: float
    lower: float
    upper: float


def timeline(bars: Sequence[StageBar]) -> str:
    """Stages as consecutive horizontal bars on the wall-clock axis."""
    fig = _figure(7.5, 0.5 + 0.42 * max(len(bars), 1))
    ax = fig.add_subplot()
    start = 0.0
    for i, bar in enumerate(bars):
        color = COLORS[i % len(COLORS)] if bar.passed else BAD
        ax.barh(i, max(bar.seconds, 0.05), left=start, color=color, height=0.6)
        ax.text(start + max(bar.seconds, 0.05), i, f"  {bar.seconds:.1f} s", va="center",
                fontsize=8)  # fmt: skip
        start += bar.seconds
    ax.set_yticks(range(len(bars)), [b.stage for b in bars])
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the improvement started")
    ax.set_xlim(0, max(start * 1.2, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    return to_data_uri(fig)


def canary_trace(points: Sequence[CanaryPoint], decision: str) -> str:
    """Effect on revenue vs units seen: estimate and always-valid interval up to the decision."""
    fig = _figure(7.5, 3.4)
    ax = fig.add_subplot()
    units = [p.units for p in points]
    ax.fill_between(units, [p.lower for p in points], [p.upper for p in points],
                    color=COLORS[0], alpha=0.2, label="95% confidence sequence")  # fmt: skip
    ax.plot(units, [p.estimate for p in points], color=COLORS[0], marker="o", ms=3,
            label="canary − champion (relative)")  # fmt: skip
    ax.axhline(0.0, color=NEUTRAL, lw=1)
    if points:  # the first batches' sequences are very wide: keep the end readable
        last = points[-1]
        lim = min(1.0, max(0.25, 3 * max(abs(last.lower), abs(last.upper))))
        ax.set_ylim(-lim, lim)
        color = GOOD if decision == "promote" else BAD
        ax.axvline(units[-1], color=color, ls="--", lw=1.2, label=f"decision: {decision}")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:+.0%}"))
    ax.set_xlabel("territories with outcomes (both sides)")
    ax.set_ylabel("revenue effect")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return to_data_uri(fig)
