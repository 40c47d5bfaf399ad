"""Profiling .tflite models: measured here or on a device over SSH, or estimated from a device profile.

``profile(ProfileConfig(model=..., device=..., estimate=...)) -> ProfileResult``.
"""

from edgepack.latency.config import OpProfile, ProfileConfig, ProfileResult
from edgepack.latency.measure import profile

__all__ = ["OpProfile", "ProfileConfig", "ProfileResult", "profile"]
