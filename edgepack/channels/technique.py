"""``prune --structure channels`` on the shared compression path: plan and rebuild before training, then
fine-tune the smaller model as it is (no tfmot wrappers)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgepack.channels.plan import ChannelReport, ChannelRequest, Evidence, plan_channels
from edgepack.compress import bridge
from edgepack.compress.pipeline import Technique
from edgepack.compress.progress import ProgressSink
from edgepack.devices.schema import DeviceProfile
from edgepack.util.tf import captured_native_output

EVIDENCE_ROWS = 512


def _evidence(prepared, seed: int) -> Evidence:
    rows = np.random.default_rng(seed).permutation(len(prepared.train))[:EVIDENCE_ROWS]
    keras = bridge.keras_module(bridge.flavor_of(prepared.loaded.model))
    index = prepared.output.index
    return Evidence(x=prepared.train.x[rows], y=prepared.y_train[rows],
                    predict=lambda model, x: bridge.outputs_of(model, x)[index],
                    loss=prepared.loss.loss_object(keras))


def channel_technique(request: ChannelRequest, device: DeviceProfile | None, seed: int,
                      found: Callable[[ChannelReport], None], progress: ProgressSink | None = None) -> Technique:
    """The Technique that removes channels as ``request`` says; ``found`` receives the report."""

    def prepare(prepared) -> dict:
        with captured_native_output():
            pruned, report = plan_channels(prepared.loaded.model, request, _evidence(prepared, seed), device)
            prepared.student = pruned
            prepared.rebuilt = bridge.rebuild(pruned, bridge.TF_KERAS)
            bridge.check_same_function(pruned, prepared.rebuilt, prepared.train.x[:32], prepared.loaded.info.path)
        found(report)
        if progress is not None:
            progress.note(f"prune: channels {report.channels_before} -> {report.channels_after} in "
                          f"{len(report.groups)} group(s), MACs {report.macs_before:,} -> {report.macs_after:,}"
                          + (f", {len(report.fenced)} group(s) fenced" if report.fenced else ""))
        return {"allocation": {"layer_channels": dict(report.layer_channels)},
                "channels": report.model_dump(mode="json")}

    return Technique(name="prune", flag="pruned", needs="Conv1D, Conv2D or Dense layer",
                     eligible=lambda layer: None, wrap=None, strip=lambda tfmot, model: model, prepare=prepare)
