"""Bundles: the folder ``edgepack run`` writes, built beside its target and renamed into place."""
