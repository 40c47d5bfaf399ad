"""Latency for a recipe's result: measured where the device is at hand, otherwise estimated.

* ``host-cpu`` (this machine) is measured locally, in a child process;
* a device whose profile has ``connection.ssh`` is measured on the device over SSH;
* any other device, or ``--estimate``, gets an estimate from its profile, labelled as one.
"""

from __future__ import annotations

from pathlib import Path

LOCAL_DEVICES = {"host-cpu"}


def how_to_profile(device, *, estimate: bool) -> str:
    """``local``, ``remote`` or ``estimate`` for this device."""
    if estimate:
        return "estimate"
    if device.name in LOCAL_DEVICES:
        return "local"
    connection = getattr(device, "connection", None)
    if connection is not None and connection.ssh:
        return "remote"
    return "estimate"


def profile_for_recipe(model: Path, device, *, estimate: bool, device_ref: str | None = None) -> dict:
    """Profile ``model`` for ``device`` and return the ProfileResult as a plain dict."""
    from edgepack.profile import ProfileConfig, profile

    how = how_to_profile(device, estimate=estimate)
    config = ProfileConfig(model=model, device=device_ref or device.name, estimate=how == "estimate",
                           remote="@device" if how == "remote" else None)
    return profile(config).model_dump(mode="json")
