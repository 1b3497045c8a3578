"""The report's plots: plain rows in, a PNG ``data:`` URI out (matplotlib, Agg, no pyplot).

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly: no pyplot state,
no global backend switch, nothing left open between plots, safe in a worker thread. Each plot
takes small frozen row types so it can be tested on literal numbers without running anything.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from twinloop.demo.results import TrajectoryBand

COLORS = ("#1f6fb4", "#d1495b", "#2e8b57", "#8c6bb1", "#e08e0b")
GOOD, BAD, NEUTRAL = "#2e8b57", "#d1495b", "#7a7a7a"
DPI = 110


@dataclass(frozen=True)
class ForestRow:
    """One metric's relative effect (treatment vs control) with its interval."""

    label: str
    estimate: float
    lower: float
    upper: float
    significant: bool
    adverse: bool


@dataclass(frozen=True)
class SegmentBar:
    """A segment's relative change of one metric inside it and everywhere else."""

    label: str
    metric: str
    inside: float
    outside: float
    share_of_loss: float


@dataclass(frozen=True)
class ChainStep:
    """One node of a causal chain with its observed relative loss and P(real)."""

    metric: str
    relative_loss: float | None
    probability: float


@dataclass(frozen=True)
class WhatIfBar:
    """A metric's predicted relative change under the intervention, from one method."""

    metric: str
    method: str
    change: float
    low: float
    high: float


@dataclass(frozen=True)
class ValidationBar:
    """A hypothesis's head-to-head: win-rate and relative difference with its interval."""

    label: str
    win_rate: float
    relative: float
    low: float
    high: float
    confirmed: bool


def to_data_uri(fig: Figure) -> str:
    """Render a figure to PNG and return it as a base64 ``data:`` URI."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _percent_axis(ax: Axes) -> None:
    """Relative effects as signed per cent, at most six ticks so labels never collide."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:+.0%}"))


def trajectories(bands: Sequence[TrajectoryBand], titles: dict[str, str] | None = None) -> str:
    """KPI per day for each variant: the Monte Carlo mean and its 90% band."""
    kpis = list(dict.fromkeys(b.kpi for b in bands))
    variants = list(dict.fromkeys(b.variant for b in bands))
    cols = min(3, len(kpis))
    rows = (len(kpis) + cols - 1) // cols
    fig = _figure(4.2 * cols, 2.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, kpi in enumerate(kpis):
        ax = axes[i // cols][i % cols]
        for band in (b for b in bands if b.kpi == kpi):
            color = COLORS[variants.index(band.variant) % len(COLORS)]
            ax.fill_between(band.day, band.low, band.high, color=color, alpha=0.2, linewidth=0)
            ax.plot(band.day, band.mean, color=color, label=band.variant, linewidth=1.6)
        ax.set_title((titles or {}).get(kpi, kpi), fontsize=10)
        ax.set_xlabel("day", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for j in range(len(kpis), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    axes[0][0].legend(fontsize=8)
    return to_data_uri(fig)


def forest(rows: Sequence[ForestRow]) -> str:
    """Every metric's relative effect and interval; red where the treatment is worse."""
    fig = _figure(7.5, 0.45 * len(rows) + 1.2)
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    for yi, row in zip(y, rows, strict=True):
        color = (BAD if row.adverse else GOOD) if row.significant else NEUTRAL
        ax.plot([row.lower, row.upper], [yi, yi], color=color, linewidth=2.2)
        ax.plot([row.estimate], [yi], "o", color=color, markersize=6)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(y, [r.label for r in rows], fontsize=9)
    ax.set_xlabel("relative effect of the treatment (95% interval)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    _percent_axis(ax)
    return to_data_uri(fig)


def segments(bars: Sequence[SegmentBar]) -> str:
    """Relative change inside each segment next to everywhere else: where the loss lives."""
    fig = _figure(7.5, 0.6 * len(bars) + 1.3)
    ax = fig.add_subplot()
    y = np.arange(len(bars))[::-1]
    labels = [f"{b.label}\n{b.metric} ({b.share_of_loss:.0%} of loss)" for b in bars]
    ax.barh(y + 0.18, [b.inside for b in bars], height=0.36, color=BAD, label="inside segment")
    ax.barh(y - 0.18, [b.outside for b in bars], height=0.36, color=NEUTRAL, label="elsewhere")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_xlabel("loser vs winner, relative change", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    _percent_axis(ax)
    return to_data_uri(fig)


def chain(steps: Sequence[ChainStep], title: str = "") -> str:
    """The causal chain as boxes and arrows, each node with its observed loss."""
    fig = _figure(2.3 * len(steps) + 0.4, 1.9)
    ax = fig.add_subplot()
    ax.set_xlim(-0.6, len(steps) - 0.4)
    ax.set_ylim(-1.0, 1.0)
    ax.axis("off")
    for i, step in enumerate(steps):
        loss = "n/a" if step.relative_loss is None else f"{step.relative_loss:.1%} worse"
        text = f"{step.metric}\n{loss}\nP(real) {step.probability:.2f}"
        color = BAD if step.probability >= 0.95 else "#f2b134"
        ax.text(i, 0.0, text, ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round,pad=0.5", "facecolor": color, "alpha": 0.25,
                      "edgecolor": color})  # fmt: skip
        if i + 1 < len(steps):
            ax.annotate("", xy=(i + 0.62, 0.0), xytext=(i + 0.38, 0.0),
                        arrowprops={"arrowstyle": "->", "linewidth": 1.6})  # fmt: skip
    if title:
        ax.set_title(title, fontsize=10)
    return to_data_uri(fig)


def what_if(bars: Sequence[WhatIfBar]) -> str:
    """Predicted relative change per metric and method, with its interval."""
    metrics = list(dict.fromkeys(b.metric for b in bars))
    methods = list(dict.fromkeys(b.method for b in bars))
    fig = _figure(7.5, 0.55 * len(metrics) * max(1, len(methods)) / 1.5 + 1.3)
    ax = fig.add_subplot()
    height = 0.8 / max(1, len(methods))
    for k, method in enumerate(methods):
        rows = [b for b in bars if b.method == method]
        y = np.array([len(metrics) - 1 - metrics.index(b.metric) for b in rows], dtype=float)
        y += (len(methods) - 1) / 2 * height - k * height
        values = np.array([b.change for b in rows])
        errors = np.array([[b.change - b.low for b in rows], [b.high - b.change for b in rows]])
        ax.barh(y, values, height=height * 0.9, color=COLORS[k % len(COLORS)], label=method,
                xerr=np.clip(errors, 0.0, None), capsize=3, alpha=0.85)  # fmt: skip
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(np.arange(len(metrics))[::-1], metrics, fontsize=9)
    ax.set_xlabel("predicted relative change (95% interval)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    _percent_axis(ax)
    return to_data_uri(fig)


def validations(bars: Sequence[ValidationBar]) -> str:
    """Each hypothesis: its win-rate over paired replicates, and the effect with its interval."""
    fig = _figure(9.0, 0.6 * len(bars) + 1.4)
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=(1, 1.6))
    y = np.arange(len(bars))[::-1]
    colors = [GOOD if b.confirmed else NEUTRAL for b in bars]
    left.barh(y, [b.win_rate for b in bars], color=colors)
    left.set_xlim(0.0, 1.0)
    left.axvline(0.5, color="black", linewidth=0.8, linestyle=":")
    left.set_yticks(y, [b.label for b in bars], fontsize=9)
    left.set_xlabel("win-rate (share of paired replicates)", fontsize=9)
    for yi, b, color in zip(y, bars, colors, strict=True):
        right.plot([b.low, b.high], [yi, yi], color=color, linewidth=2.2)
        right.plot([b.relative], [yi], "o", color=color)
    right.axvline(0.0, color="black", linewidth=0.8)
    right.set_xlabel("relative effect on the KPI (95% paired interval)", fontsize=9)
    right.grid(axis="x", alpha=0.3)
    _percent_axis(right)
    return to_data_uri(fig)
