"""Canary deployment's pure core: sticky assignment, live outcome statistics, the decision rule."""
