"""What-if: counterfactual changes to business metrics, propagated through a causal graph.

``graph`` holds the declared or default metric DAGs, ``strengths`` the edge strengths fitted
from history (each equation's form, log or linear, chosen from the data), ``confounders`` the
observed common causes a default graph is adjusted for, ``structural`` the fitted model and its
propagation, ``analytic`` the interventional what-if with intervals, ``counterfactual`` the
answer for one observed unit (abduction), ``simulated`` the re-run of the twin with changed
parameters.
"""
