"""Request limits at the HTTP edge: how big a request may be before it is refused, not run.

Every limit is a number a deployment sets in the Serve config (``args.limits``); a request past
one gets 413 (``LimitExceeded``: the body names the field, the value and the limit) before any
work starts. Deadlines work the same way: a client's ``x-request-timeout-seconds`` header can
shorten its own deadline but never lengthen it past ``max_timeout_s`` (Serve's proxy would
otherwise let a header of ``0`` disable the timeout altogether).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.errors import LimitExceeded

TIMEOUT_HEADER = "x-request-timeout-seconds"


class Limits(FrozenModel):
    """The largest request the API accepts; units in each description."""

    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="Request body.")
    max_rows: int = Field(default=200_000, ge=1, description="Rows of a table sent or generated.")
    max_columns: int = Field(default=200, ge=1, description="Columns of a table sent.")
    max_replicates: int = Field(default=10_000, ge=1, description="Monte Carlo replicates.")
    max_days: float = Field(default=3650.0, gt=0.0, description="Simulated days per run.")
    max_customers: int = Field(default=5_000_000, ge=1, description="Initial customers.")
    max_customer_days: float = Field(
        default=2e10, gt=0.0, description="customers × days × replicates of one request."
    )
    inline_customer_days: float = Field(
        default=1e7,
        gt=0.0,
        description="Simulations above this many customer-days answer 202 and run in the "
        "background on the actor pool (about 10 s of one core).",
    )
    ingress_answer_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        description="A what-if without a history, or an analysis without per-unit rows, whose "
        "body is at most this many bytes is answered by the ingress replica itself (1-2 ms of "
        "work, less than one DeploymentHandle round trip); 0 sends every request to its "
        "capability deployment.",
    )
    max_lag: int = Field(default=500, ge=0, description="Correlation lags, in steps.")
    max_list: int = Field(default=1_000, ge=1, description="Items in a list (models, grid).")
    allowed_predictor_modules: tuple[str, ...] = Field(
        default=("twinloop.sim.predictor",),
        description="Modules a `predictor` model may be imported from. A predictor is imported "
        "and called with the request's params, so over HTTP only these are allowed.",
    )
    default_timeout_s: float = Field(default=60.0, gt=0.0, description="Deadline of a request.")
    max_timeout_s: float = Field(default=300.0, gt=0.0, description="Cap on a client's header.")


def check_limit(field: str, value: float, limit: float) -> None:
    """Raise LimitExceeded naming ``field`` when ``value`` is above ``limit``."""
    if value > limit:
        raise LimitExceeded(field, value, limit)


def request_deadline(headers: Mapping[str, str], limits: Limits) -> float:
    """Seconds this request may take: the client's header, capped; the default otherwise.

    A missing, malformed, non-finite or non-positive header means the default — never "no
    deadline", which is what Serve's proxy would read into ``0``.
    """
    raw = headers.get(TIMEOUT_HEADER)
    if raw is None:
        return limits.default_timeout_s
    try:
        asked = float(raw)
    except ValueError:
        return limits.default_timeout_s
    if not math.isfinite(asked) or asked <= 0:
        return limits.default_timeout_s
    return min(asked, limits.max_timeout_s)
