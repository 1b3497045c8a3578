"""Bodies of the Failure Analyzer routes: the seed's ``{experimentId, testResult}``, patterns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from serve_apps.limits import Limits
from serve_apps.schemas.base import EdgeModel
from serve_apps.tables import JsonTable
from twinloop.analysis.patterns import Pattern
from twinloop.errors import InvalidInput

# --- failure analyzer -------------------------------------------------------------------------


class AnalyzeRequest(EdgeModel):
    """``POST /analyze-failure``: the seed's ``{experimentId, testResult}``.

    ``testResult`` is an A/B result in any form the analyzer takes (docs/analyzer.md): the
    seed's winner/loser point values, sufficient statistics per variant, a segment breakdown.
    Per-unit data comes as ``rows`` (records or columns); a ``raw.path`` is refused, since the
    server would read its own files on the client's behalf.
    """

    experiment_id: str | None = Field(default=None, description="Default: testResult.experimentId.")
    test_result: dict[str, Any] = Field(description="The A/B result (see docs/analyzer.md).")
    rows: JsonTable | None = Field(default=None, description="Per-unit rows, if any.")
    store: bool = Field(default=True, description="Keep the analysis (GET /analyses/{id}).")

    def check(self, limits: Limits) -> None:
        raw = self.test_result.get("raw", self.test_result.get("rawData"))
        if isinstance(raw, dict) and raw.get("path") is not None:
            raise InvalidInput(
                "testResult.raw.path",
                "the HTTP API reads no server files; send the per-unit rows in `rows`",
            )
        inner = self.test_result.get("experimentId", self.test_result.get("experiment_id"))
        if self.experiment_id is not None and inner is not None and inner != self.experiment_id:
            raise InvalidInput(
                "experimentId",
                f"{self.experiment_id!r} differs from testResult.experimentId {inner!r}",
            )
        if self.experiment_id is None and inner is None:
            raise InvalidInput("experimentId", "missing (here or in testResult)")

    def bounded(self) -> bool:
        return self.rows is None

    def result_data(self) -> dict[str, Any]:
        """The analyzer's input: testResult with the experiment id in it."""
        data = dict(self.test_result)
        if self.experiment_id is not None:
            data.pop("experiment_id", None)
            data["experimentId"] = self.experiment_id
        return data


class PatternList(BaseModel):
    """``GET /patterns``: named failure patterns, most frequent first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patterns: list[Pattern]
    analyses: int = Field(description="Analyses kept in the Store.")
