"""Off-policy evaluation: a new policy's value estimated from another policy's logged decisions.

``logs`` reads and checks the decisions (context features, action, propensity, reward),
``policy`` turns a target policy (a table or a linear model, both plain data) into action
probabilities, ``estimators`` gives IPS, self-normalised IPS and doubly robust estimates with
intervals, ``models`` holds the contracts.
"""

from twinloop.offpolicy.estimators import evaluate_policy
from twinloop.offpolicy.logs import LoggedDecisions, logged_decisions, read_logs
from twinloop.offpolicy.models import (
    Estimate,
    LinearPolicy,
    OffPolicyResult,
    OffPolicySettings,
    PolicyFile,
    TablePolicy,
)

__all__ = [
    "Estimate",
    "LinearPolicy",
    "LoggedDecisions",
    "OffPolicyResult",
    "OffPolicySettings",
    "PolicyFile",
    "TablePolicy",
    "evaluate_policy",
    "logged_decisions",
    "read_logs",
]
