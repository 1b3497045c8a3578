"""Bodies of the Failure Analyzer routes: the seed's ``{experimentId, testResult}``, patterns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from serve_apps.schemas.base import EdgeModel
from serve_apps.tables import JsonTable
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.analysis.inputs import AbTestResult
from twinloop.analysis.patterns import Pattern
from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.loop.triggers import TriggerDecision

# --- failure analyzer -------------------------------------------------------------------------


class AnalyzeResponse(FailureAnalysis):
    """``POST /analyze-failure``'s answer: the analysis, plus whether it started an improvement
    (``AUTO_IMPROVE`` and ``FAILURE_THRESHOLD``) and why or why not. The stored analysis
    (``GET /analyses/{id}``) is the plain ``FailureAnalysis``."""

    improvement: TriggerDecision | None = None


class AnalyzerAbTestResult(AbTestResult):
    """The Failure Analyzer's ``AbTestResult``, under a name of its own in the OpenAPI document
    (the sandbox's A/B test result is called ``AbTestResult`` there)."""


class AnalyzeRequest(EdgeModel):
    """``POST /analyze-failure``: the seed's ``{experimentId, testResult}``.

    ``testResult`` is the analyzer's own ``AbTestResult`` (so the OpenAPI document describes
    it), sent in any form the analyzer reads (docs/analyzer.md): the seed's winner/loser point
    values, sufficient statistics per variant, a segment breakdown, camelCase or snake_case —
    read by ``AbTestResult.from_friendly`` while the body is validated, so an error names the
    field inside ``testResult`` as it was sent. Per-unit data comes as ``rows`` (records or
    columns); a ``raw.path`` is refused, since the server would read its own files on the
    client's behalf.
    """

    experiment_id: str | None = Field(default=None, description="Default: testResult.experimentId.")
    test_result: AnalyzerAbTestResult = Field(description="The A/B result (see docs/analyzer.md).")
    rows: JsonTable | None = Field(default=None, description="Per-unit rows, if any.")
    store: bool = Field(default=True, description="Keep the analysis (GET /analyses/{id}).")

    @model_validator(mode="before")
    @classmethod
    def _friendly(cls, data: Any) -> Any:
        """The seed's ``testResult`` read into the model, its experiment id filled in."""
        if not isinstance(data, Mapping):
            return data
        key = "testResult" if "testResult" in data else "test_result"
        given = data.get(key)
        if not isinstance(given, Mapping):
            return data  # pydantic names the missing or mistyped field
        return {**data, key: _test_result(data, given)}

    def bounded(self) -> bool:
        return self.rows is None

    def uses_store(self) -> bool:
        return self.store


def _test_result(body: Mapping[str, Any], given: Mapping[str, Any]) -> AnalyzerAbTestResult:
    """``testResult`` as the analyzer's model: refused server paths, one experiment id."""
    raw = next((given[k] for k in ("raw", "rawData", "raw_data") if k in given), None)
    if isinstance(raw, Mapping) and raw.get("path") is not None:
        raise InvalidInput(
            "testResult.raw.path",
            "the HTTP API reads no server files; send the per-unit rows in `rows`",
        )
    outer = body.get("experimentId", body.get("experiment_id"))
    inner = given.get("experimentId", given.get("experiment_id"))
    if outer is not None and inner is not None and inner != outer:
        raise InvalidInput(
            "experimentId", f"{outer!r} differs from testResult.experimentId {inner!r}"
        )
    if outer is None and inner is None:
        raise InvalidInput("experimentId", "missing (here or in testResult)")
    data = {k: v for k, v in given.items() if k not in ("experimentId", "experiment_id")}
    data["experimentId"] = outer if outer is not None else inner
    try:
        return AnalyzerAbTestResult.from_friendly(data, raw_given=body.get("rows") is not None)
    except InvalidInput as exc:
        if exc.field.startswith("experimentId"):
            raise
        raise InvalidInput(f"testResult.{exc.field}", exc.message) from None


class PatternList(FrozenModel):
    """``GET /patterns``: named failure patterns, most frequent first."""

    patterns: list[Pattern]
    analyses: int = Field(description="Analyses kept in the Store.")
