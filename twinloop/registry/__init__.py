"""The model registry: families, immutable versions, aliases moved by compare-and-set, artifacts."""
