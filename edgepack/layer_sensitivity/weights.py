"""Magnitude pruning and 1-D k-means clustering of one kernel, without fine-tuning (numpy only)."""

from __future__ import annotations

import numpy as np


def prune_kernel(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """``kernel`` with its ``sparsity`` fraction of smallest-magnitude values set to zero."""
    flat = np.abs(kernel).ravel()
    count = int(round(sparsity * flat.size))
    if count <= 0:
        return kernel.copy()
    threshold = np.partition(flat, count - 1)[count - 1]
    pruned = kernel.copy()
    pruned[np.abs(kernel) <= threshold] = 0
    return pruned


def cluster_kernel(kernel: np.ndarray, clusters: int, iterations: int = 25) -> np.ndarray:
    """``kernel`` with every value replaced by the nearest of ``clusters`` centroids (linear init,
    Lloyd's iterations), as tfmot's clustering does before fine-tuning."""
    values = kernel.ravel().astype(np.float64)
    if np.unique(values).size <= clusters:
        return kernel.copy()
    centroids = np.linspace(values.min(), values.max(), clusters)
    for _ in range(iterations):
        edges = (centroids[1:] + centroids[:-1]) / 2
        assignment = np.searchsorted(edges, values)
        sums = np.bincount(assignment, weights=values, minlength=clusters)
        counts = np.bincount(assignment, minlength=clusters)
        moved = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.allclose(moved, centroids):
            break
        centroids = np.sort(moved)
    edges = (centroids[1:] + centroids[:-1]) / 2
    return centroids[np.searchsorted(edges, values)].reshape(kernel.shape).astype(kernel.dtype)
