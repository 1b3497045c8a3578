"""Phase 2, the improvement loop: retraining variants and judging them in the twin."""
