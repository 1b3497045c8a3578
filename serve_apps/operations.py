"""The operation declaration: one value per HTTP operation, from which everything else is derived.

An :class:`Operation` says once what an operation is — its name, the capability deployment that
answers it, its HTTP method and path, its request and response models, its statuses and whether
it may run in the background. From that one declaration the edge derives

* the FastAPI route (``serve_apps.routes.base.OperationRouter``): method, path, ``response_model``,
  ``status_code``, the documented error and 202 answers, the bearer-token dependency of a
  mutating route, the OpenAPI ``operationId`` (from the name) and tag;
* the capability dispatch: an inline call is ``client.call(op.name, *args)`` on the capability
  named by ``op.capability`` (so the capability method carries the operation's name), and a
  background run's record carries ``op.name`` so any ingress replica knows which deployment
  re-dispatches it;
* the background run's request model (``op.request``), which validates the stored body again in
  the capability replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from serve_apps.errors import ErrorBody
from serve_apps.schemas.base import EdgeModel, RunAccepted

Background = Literal["never", "on_request", "always"]

# The error answers a route documents; every route still answers the others the edge can give.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (401, "missing or wrong bearer token"),
        (404, "unknown id"),
        (413, "request larger than a limit (the body names it)"),
        (422, "invalid input (the body names the field)"),
        (504, "past the request deadline"),
    ]
}
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": RunAccepted, "description": "running in the background; poll the location"}
}


@dataclass(frozen=True)
class Operation:
    """One HTTP operation, declared once (see the module docstring).

    ``capability`` is ``None`` for the edge's own routes (health, runs). ``background`` says how a
    POST with a body runs: ``never`` (answered inline), ``on_request`` (inline, or 202 with a run
    when the client sends ``Prefer: respond-async`` or the capability defers it as too big),
    ``always`` (202 with a run; the result is documented as the run's 200).
    """

    name: str
    capability: str | None
    method: Literal["GET", "POST", "PUT"]
    path: str
    response: Any  # a model, or a type like list[RunRecord]
    request: type[EdgeModel] | None = None
    status: int = 200
    background: Background = "never"
    errors: bool = True  # document the error answers (ERRORS) in the OpenAPI document
    summary: str | None = None
    tag: str | None = None  # default: the capability
    location: str | None = None  # a created resource's path, formatted with the result's fields

    @property
    def mutating(self) -> bool:
        """Every non-GET route needs the bearer token when one is configured."""
        return self.method != "GET"

    def route_options(self) -> dict[str, Any]:
        """The keyword arguments of ``APIRouter.add_api_route`` this declaration implies."""
        responses: dict[int | str, dict[str, Any]] = dict(ERRORS) if self.errors else {}
        response_model = self.response
        status = self.status
        if self.background == "on_request":
            responses |= ACCEPTED
        elif self.background == "always":
            response_model, status = RunAccepted, 202
            result = {"model": self.response, "description": "the run's result (GET /runs/{id})"}
            responses |= {200: result}
        options: dict[str, Any] = {
            "methods": [self.method],
            "response_model": response_model,
            "status_code": status,
            "name": self.name,
            "tags": [self.tag or self.capability or "edge"],
        }
        if responses:
            options["responses"] = responses
        if self.summary is not None:
            options["summary"] = self.summary
        return options

    def validate(self, body: dict[str, Any]) -> BaseModel:
        """A stored run's body as this operation's request model (in the capability replica)."""
        if self.request is None:
            raise ValueError(f"operation {self.name!r} takes no body")  # a declaration bug
        return self.request.model_validate(body)
