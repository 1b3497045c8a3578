"""Routes of metric replication: analytic what-if and counterfactuals, correlations, anomalies,
calibration, synthetic data."""

from serve_apps.operations import Operation
from serve_apps.routes.base import OperationRouter
from serve_apps.schemas.metrics import (
    AnomaliesRequest,
    AnomaliesResponse,
    CalibrateRequest,
    CalibrateResponse,
    CorrelationsRequest,
    CounterfactualRequest,
    SyntheticRequest,
    SyntheticResponse,
    WhatIfRequest,
)
from twinloop.replication.correlation import CorrelationResult
from twinloop.replication.whatif.analytic import WhatIfResult
from twinloop.replication.whatif.counterfactual import CounterfactualResult

router = OperationRouter("metrics")

WHAT_IF = router.declare(
    Operation(
        name="what_if",
        capability="metrics",
        method="POST",
        path="/metrics/what-if",
        request=WhatIfRequest,
        response=WhatIfResult,
        background="on_request",
    )
)
COUNTERFACTUAL = router.declare(
    Operation(
        name="counterfactual",
        capability="metrics",
        method="POST",
        path="/metrics/what-if/counterfactual",
        request=CounterfactualRequest,
        response=CounterfactualResult,
        background="on_request",
    )
)
CORRELATIONS = router.declare(
    Operation(
        name="correlations",
        capability="metrics",
        method="POST",
        path="/metrics/correlations",
        request=CorrelationsRequest,
        response=CorrelationResult,
        background="on_request",
    )
)
ANOMALIES = router.declare(
    Operation(
        name="anomalies",
        capability="metrics",
        method="POST",
        path="/metrics/anomalies",
        request=AnomaliesRequest,
        response=AnomaliesResponse,
        background="on_request",
    )
)
CALIBRATE = router.declare(
    Operation(
        name="calibrate",
        capability="metrics",
        method="POST",
        path="/metrics/calibrate",
        request=CalibrateRequest,
        response=CalibrateResponse,
        background="always",
    )
)
SYNTHETIC = router.declare(
    Operation(
        name="synthetic",
        capability="metrics",
        method="POST",
        path="/synthetic",
        request=SyntheticRequest,
        response=SyntheticResponse,
        background="on_request",
    )
)
