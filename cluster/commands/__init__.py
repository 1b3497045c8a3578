"""CLI sub-commands, one module each; every module exposes ``register(subparsers)``.

``COMMANDS`` lists them in the order ``twinloop --help`` shows them. A module's handler returns
the process exit code and raises ``TwinloopError`` for bad input; ``cluster.cli`` turns that into
one readable line on stderr and exit status 2.
"""

COMMANDS: list[str] = [
    "demo",
    "simulate",
    "correlations",
    "whatif",
    "calibrate",
    "synthetic",
    "anomalies",
    "rootcause",
    "analyze",
    "offpolicy",
    "plan",
    "serve",
    "sandbox",
    "retrain",
    "models",
    "championship",
    "improve",
    "preflight",
]
