"""Ray Tune adapters: search retraining variants for the best sandbox win-rate."""
