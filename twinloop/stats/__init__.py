"""A/B statistics: sufficient statistics, frequentist and Bayesian tests, corrections, power."""
