"""Where to spend a compression budget: per-layer sparsity from measured damage curves."""
