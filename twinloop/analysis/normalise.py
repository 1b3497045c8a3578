"""Friendly shapes of an A/B result turned into the canonical field layout, and error paths.

Accepted shapes: the seed's point form (``{"winner": 0.92, "loser": 0.78, "percentChange":
-15.2}`` per metric, with top-level ``winner``/``loser`` names), metrics and variants as objects
keyed by name, variant data without ``form`` (inferred from its keys) or as a bare number,
camelCase field names at every level (``experimentId``, ``sumSq``) and the seed's synonyms
(``plannedAllocation``, ``businessParameters``, ``segmentBreakdown``, ``rawData``). Names a user
chose (metrics, variants, segment dimensions) are kept as given. When no variant is flagged as
control, the stated winner, a variant named control/baseline/champion/A, or else the first one
is. :func:`normalise` also returns how each renamed field was spelled, so an error names the
field as the user wrote it (:func:`respell`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from twinloop.errors import InvalidInput

CONTROL_NAMES = ("control", "baseline", "champion", "a")
# Keys that reveal a variant data form when ``form`` is absent (first match wins).
_FORM_KEYS: tuple[tuple[str, frozenset[str]], ...] = (
    ("point", frozenset({"value"})),
    ("raw", frozenset({"values"})),
    ("binomial", frozenset({"successes"})),
    ("ratio", frozenset({"num_sum"})),
    ("covariate", frozenset({"pre_sum"})),
    ("continuous", frozenset({"mean"})),
    ("sums", frozenset({"sum"})),
)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
# The seed's synonyms of a field, after snake-casing: (level, name) → the model's field name.
_SYNONYMS = {
    ("result", "business_parameters"): "business",
    ("result", "segment_breakdown"): "segments",
    ("result", "raw_data"): "raw",
    ("variant", "planned_allocation"): "allocation",
}
# How a renamed field was spelled: (canonical dotted path of its object, field name) → as sent.
Spellings = dict[tuple[str, str], str]


def _snake(body: Mapping[str, Any], level: str, where: str, spellings: Spellings) -> dict[str, Any]:
    """A model's field names in snake_case (and the seed's synonyms resolved), values kept."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = _CAMEL.sub("_", key).lower() if isinstance(key, str) else key
        name = _SYNONYMS.get((level, name), name)
        if name != key:
            spellings[(where, name)] = key
        out[name] = value
    return out


def normalise(data: Mapping[str, Any]) -> tuple[dict[str, Any], Spellings]:
    """Turn the seed's and other friendly shapes into the canonical field layout; also return
    the spelling of every field renamed on the way (see :func:`respell`)."""
    spellings: Spellings = {}
    out = _snake(data, "result", "", spellings)
    winner, loser = out.get("winner"), out.get("loser")
    metrics = out.get("metrics", ())
    if isinstance(metrics, Mapping):
        for name, body in metrics.items():
            if not isinstance(body, Mapping):
                raise InvalidInput(f"metrics.{name}", f"must be an object, got {body!r}")
        metrics = [{"name": name, **body} for name, body in metrics.items()]
    if isinstance(metrics, list | tuple):
        out["metrics"] = [
            _metric(m, winner, loser, spellings) if isinstance(m, Mapping) else m for m in metrics
        ]
    variants = out.get("variants")
    if isinstance(variants, Mapping):  # {"A": {"control": true}, …}
        variants = [
            {"name": k, **(v if isinstance(v, Mapping) else {})} for k, v in variants.items()
        ]
    if isinstance(variants, list | tuple):
        variants = [
            _snake(v, "variant", f"variants[{i}]", spellings) if isinstance(v, Mapping) else v
            for i, v in enumerate(variants)
        ]
    if not variants:
        names = _names_from_metrics(out.get("metrics"), winner, loser)
        variants = [{"name": name} for name in names]
    if (
        isinstance(variants, list | tuple)
        and variants
        and all(isinstance(v, Mapping) for v in variants)
    ):
        variants = [dict(v) for v in variants]
        if not any(v.get("control") for v in variants):
            chosen = default_control([str(v.get("name")) for v in variants], winner)
            for variant in variants:
                variant["control"] = variant.get("name") == chosen
    if variants:
        out["variants"] = variants
    segments = out.get("segments")
    if isinstance(segments, list | tuple):
        out["segments"] = [
            _with_forms(
                _snake(row, "segment", f"segments[{i}]", spellings), f"segments[{i}]", spellings
            )
            if isinstance(row, Mapping)
            else row
            for i, row in enumerate(segments)
        ]
    for name in ("business", "raw"):
        if isinstance(out.get(name), Mapping):
            out[name] = _snake(out[name], name, name, spellings)
    return out, spellings


def respell(path: str, spellings: Spellings) -> str:
    """A canonical dotted path (``business.traffic_per_day``) as the user spelled its fields
    (``businessParameters.trafficPerDay``)."""
    canonical: list[str] = []
    sent: list[str] = []
    for part in path.split("."):
        name, bracket, rest = part.partition("[")
        sent.append(spellings.get((".".join(canonical), name), name) + bracket + rest)
        canonical.append(part)
    return ".".join(sent)


def _metric(
    body: Mapping[str, Any], winner: Any, loser: Any, spellings: Spellings
) -> dict[str, Any]:
    where = f"metrics.{body.get('name')}"
    metric = _snake(body, "metric", where, spellings)
    if "winner" in metric or "loser" in metric:  # the seed's point form
        name = metric.get("name")
        if not isinstance(winner, str) or not isinstance(loser, str):
            raise InvalidInput(
                f"metrics.{name}", "winner/loser values need top-level 'winner' and 'loser' names"
            )
        for side in ("winner", "loser"):
            if side not in metric:
                raise InvalidInput(f"metrics.{name}.{side}", "missing (give winner and loser)")
        change = metric.pop("percent_change", None)
        loser_point = {"form": "point", "value": metric.pop("loser")}
        if change is not None:
            loser_point["percent_change"] = change
        metric["variants"] = {
            winner: {"form": "point", "value": metric.pop("winner")},
            loser: loser_point,
        }
    return _with_forms(metric, where, spellings)


def _with_forms(body: Mapping[str, Any], where: str, spellings: Spellings) -> dict[str, Any]:
    """Give every variant's data a ``form`` (inferred from its keys) and snake_case keys."""
    out = dict(body)
    data = out.get("variants")
    if isinstance(data, Mapping):
        out["variants"] = {
            variant: _form(value, f"{where}.variants.{variant}", spellings)
            for variant, value in data.items()
        }
    return out


def _form(value: Any, where: str, spellings: Spellings) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"form": "point", "value": value}
    if not isinstance(value, Mapping):
        return value
    snake = _snake(value, "data", where, spellings)
    if "form" not in snake:
        keys = set(snake)
        for form, needed in _FORM_KEYS:
            if needed <= keys:
                snake["form"] = form
                break
    return snake


def _names_from_metrics(metrics: Any, winner: Any, loser: Any) -> list[str]:
    names: list[str] = []
    if isinstance(metrics, list):
        for metric in metrics:
            data = metric.get("variants") if isinstance(metric, Mapping) else None
            if isinstance(data, Mapping):
                names.extend(str(k) for k in data if str(k) not in names)
    for side in (winner, loser):
        if isinstance(side, str) and side not in names and names:
            names.append(side)
    return names


def default_control(names: Sequence[str], winner: Any) -> str:
    """No control flagged: the stated winner, a conventional name, else the first variant."""
    if isinstance(winner, str) and winner in names:
        return winner
    for name in names:
        if name.lower() in CONTROL_NAMES:
            return name
    return names[0]
