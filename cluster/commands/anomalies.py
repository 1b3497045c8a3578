"""``twinloop anomalies``: stream a one-metric CSV through the detector and list its anomalies."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from twinloop.contract import FrozenModel, invalid_input
from twinloop.errors import InvalidInput
from twinloop.replication.anomaly.detector import detect_anomalies
from twinloop.replication.anomaly.library import keep_pattern, stored_patterns
from twinloop.replication.anomaly.models import (
    SINGLE_THRESHOLD,
    Anomaly,
    AnomalyPattern,
    AnomalySettings,
)
from twinloop.replication.anomaly.patterns import DEFAULT_PATTERNS, learn_pattern
from twinloop.replication.anomaly.series import read_series_csv


class AnomaliesReport(FrozenModel):
    """What ``--json`` prints: the series, the settings and every anomaly found."""

    series: str
    value_column: str
    n_points: int
    settings: AnomalySettings
    patterns_used: list[str]
    anomalies: list[Anomaly]
    learned: AnomalyPattern | None = None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "anomalies", help="detect and label anomalies in one metric (CSV: timestamp + value)"
    )
    p.add_argument("series", type=Path, help="CSV with a timestamp column and one value column")
    p.add_argument("--value-column", default=None, help="value column when there are several")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"score that counts as anomalous (default {AnomalySettings().threshold})",
    )
    p.add_argument(
        "--single",
        action="store_true",
        help="score with the default setting alone, not the 36-setting ensemble (about 6x "
        f"faster, less robust; threshold {SINGLE_THRESHOLD} unless --threshold)",
    )
    p.add_argument(
        "--row-order",
        action="store_true",
        help="accept timestamps that step back (keep the file's row order)",
    )
    p.add_argument(
        "--patterns",
        type=Path,
        default=None,
        help="JSON list of known patterns (default: the built-in library)",
    )
    p.add_argument(
        "--store", action="store_true", help="also match the patterns kept in the configured store"
    )
    p.add_argument(
        "--learn",
        default=None,
        metavar="NAME",
        help="save the strongest anomaly as pattern NAME in the store (with --store)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def _read_patterns(path: Path) -> list[AnomalyPattern]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInput("patterns", f"{path} is not a JSON list of patterns: {exc}") from exc
    try:
        return TypeAdapter(list[AnomalyPattern]).validate_python(data)
    except ValidationError as exc:
        bad = invalid_input(exc, data, field="patterns")
        raise InvalidInput(bad.field, f"{path}: {bad.message}") from exc


def run(args: argparse.Namespace) -> int:
    if args.learn is not None and not args.store:
        raise InvalidInput("learn", "--learn saves into the store: add --store")
    overrides: dict[str, object] = {"timestamp_order": "row_order" if args.row_order else "strict"}
    if args.single:
        overrides.update(ensemble=False, threshold=SINGLE_THRESHOLD)
    if args.threshold is not None:
        if not 0 < args.threshold <= 1:
            raise InvalidInput("threshold", f"{args.threshold} must be in (0, 1]")
        overrides["threshold"] = args.threshold
    settings = AnomalySettings.model_validate(overrides)
    patterns = _read_patterns(args.patterns) if args.patterns else list(DEFAULT_PATTERNS)
    store = None
    if args.store:
        from cluster.store_factory import open_store
        from twinloop.config import load_settings

        config = load_settings()
        store = open_store(config.redis_url, config.data_dir)
        patterns += stored_patterns(store)
    try:
        series = read_series_csv(args.series, args.value_column)
        result = detect_anomalies(series.timestamps, series.values, settings, patterns)
        learned = None
        if args.learn is not None and store is not None:
            if not result.anomalies:
                raise InvalidInput("learn", f"no anomaly in {args.series} to learn from")
            strongest = max(result.anomalies, key=lambda a: a.score)
            learned = learn_pattern(strongest, args.learn, f"learned from {args.series.name}")
            keep_pattern(store, learned)
    finally:
        if store is not None:
            store.close()
    report = AnomaliesReport(
        series=str(args.series),
        value_column=series.value_column,
        n_points=result.n_points,
        settings=result.settings,
        patterns_used=result.patterns_used,
        anomalies=result.anomalies,
        learned=learned,
    )
    print(report.model_dump_json(indent=2) if args.json else render(report))
    return 0


def render(report: AnomaliesReport) -> str:
    lines = [
        f"{report.series}: {report.n_points} points of {report.value_column!r}, "
        f"{len(report.anomalies)} anomalies (score >= {report.settings.threshold:g})"
    ]
    if report.anomalies:
        lines.append(
            f"{'timestamp':<20} {'row':>6} {'value':>12} {'score':>6} {'type':<16} pattern"
        )
    for a in report.anomalies:
        pattern = f"{a.pattern.name} ({a.pattern.similarity:.2f})" if a.pattern else "-"
        lines.append(
            f"{a.timestamp:%Y-%m-%d %H:%M:%S} {a.index:>6} {a.value:>12.6g} "
            f"{a.score:>6.3f} {a.kind:<16} {pattern}"
        )
    if report.learned is not None:
        lines.append(
            f"learned pattern {report.learned.name!r} ({report.learned.kind}) into the store"
        )
    return "\n".join(lines)
