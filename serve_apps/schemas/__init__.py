"""Request and response bodies of the HTTP API: the core's models, with camelCase at the edge.

One module per capability (``metrics``, ``sandbox``, ``analyzer``, ``environments``), and
``base`` for what they share.

Top-level request fields accept the seed's camelCase (``baseMetrics``, ``environmentId``) as well
as snake_case; nested objects are the core's own models (``WhatIfSettings``,
``CorrelationSettings``, ``BusinessEnvironment``, …) and keep their snake_case names, so there is
one spelling per concept below the top level. Each request knows its size (``check``) and turns
itself into the core's input (``to_spec``) — the capability deployments do no HTTP parsing.
"""
