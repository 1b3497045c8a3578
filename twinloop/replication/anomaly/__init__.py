"""Anomaly detection on KPI series: a causal streaming detector, typed anomalies, known patterns.

``detector`` is the entry point; ``streaming`` holds the online statistics it is built from,
``patterns`` the classification of an anomaly and the pattern library, ``library`` that
library as kept in the Store (its kind and ids), ``series`` reading a single-metric series,
``models`` the contract.
"""
