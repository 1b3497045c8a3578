"""Metric replication: KPI history, correlations, calibration, what-if, anomalies, synthetics."""
