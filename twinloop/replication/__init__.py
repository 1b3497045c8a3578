"""Metric replication: KPI history, correlations, calibration, what-if, anomalies, synthetic data."""
