"""The model performance sandbox: Monte Carlo, head-to-head, grids and A/B tests in the twin."""
