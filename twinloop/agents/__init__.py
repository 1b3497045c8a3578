"""Specialised improvement agents: each turns one plan action into candidates with evidence.

``protocol`` is the contract (context, candidate, the ``Agent`` protocol), ``registry`` finds
agents (built-ins and the ``twinloop.agents`` entry-point group), ``business``, ``performance``,
``ml_pipeline`` and ``qa`` are the built-ins' logic, ``dispatch`` runs a plan in-process (the Ray
orchestrator in ``actors/orchestrator.py`` runs the same agents as actors).
"""
