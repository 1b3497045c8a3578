"""Synthetic data: rows that keep a table's marginals and correlations, plus targeted edge cases.

``copula`` is the Gaussian copula over empirical marginals, ``edgecases`` the edge-case
specifications and their transforms, ``generate`` the entry point that combines them.
"""
