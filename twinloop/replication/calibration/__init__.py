"""Calibration: fit the twin's parameters to a production KPI history and score the fit.

``calibrate`` is the entry point; ``series`` checks the daily KPIs it needs, ``fit`` holds the
closed-form estimates, ``sensitivity`` the simulation-fitted churn sensitivity, ``state`` one
calibration's working state, ``accuracy`` Simulation Accuracy on a held-back window, ``models``
the contract.
"""
