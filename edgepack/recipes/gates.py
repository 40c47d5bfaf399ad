"""Checking a run's figures against the recipe's gates."""

from __future__ import annotations

from edgepack.latency.config import ProfileResult
from edgepack.recipes.result import GateVerdict
from edgepack.recipes.schema import Gates


def check_gates(gates: Gates, *, drop: float | None, drop_unit: str | None, latency: ProfileResult | None,
                size_bytes: int) -> list[GateVerdict]:
    """One verdict per gate the recipe sets."""
    verdicts = []
    if gates.max_accuracy_drop is not None:
        verdicts.append(GateVerdict(gate="max_accuracy_drop", threshold=gates.max_accuracy_drop, value=drop,
                                    unit=drop_unit or "", passed=drop is not None and drop <= gates.max_accuracy_drop))
    if gates.max_latency_ms is not None:
        p50 = latency.latency_ms["p50"] if latency else None
        note = None
        if latency and latency.estimated:
            note = f"estimated: {latency.estimate_source or 'from the device profile'}"
        verdicts.append(GateVerdict(gate="max_latency_ms", threshold=gates.max_latency_ms, value=p50, unit="ms p50",
                                    passed=p50 is not None and p50 <= gates.max_latency_ms, note=note))
    if gates.max_size_kb is not None:
        size_kb = size_bytes / 1024
        verdicts.append(GateVerdict(gate="max_size_kb", threshold=gates.max_size_kb, value=size_kb, unit="KB",
                                    passed=size_kb <= gates.max_size_kb))
    return verdicts
