"""What-if: counterfactual changes to business metrics, propagated through a causal graph.

``graph`` holds the declared or default metric DAGs, ``strengths`` the edge strengths fitted
from history, ``analytic`` the propagation with intervals, ``simulated`` the re-run of the twin
with changed parameters.
"""
