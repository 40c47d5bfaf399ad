"""Per-layer sensitivity to int8, pruning and clustering (``edgepack sensitivity``)."""
