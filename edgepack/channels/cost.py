"""What a channel budget costs: MACs, parameters and estimated latency of the pruned model, without building it.

Every layer call's work is read from the analysed graph and scaled by the fraction of its input and
output channels kept: a convolution's MACs by both, a depthwise convolution's and an element-wise
operation's by its channels. The latency of each call is the device profile's per-operator formula
(``latency.estimate.op_time``, what ``profile --estimate`` uses for a ``.tflite``) on the Keras graph:
BatchNormalization and activations count as folded into the convolution before them, as the
converter folds and fuses them; the parameter cache and link streaming of the Coral profiles are not
modelled here.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgepack.channels.graph import Call, ChannelGraph, Layout
from edgepack.devices.schema import Accelerator, DeviceProfile
from edgepack.latency.estimate import gmacs_for, op_time, thread_scale
from edgepack.latency.op_counts import ITEMSIZE, OpWork

FOLDED = frozenset({"BatchNormalization", "ReLU", "Activation", "LeakyReLU", "ELU", "Dropout", "SpatialDropout1D",
                    "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
                    "Identity", "Flatten", "InputLayer"})
CONVOLUTIONS = frozenset({"Conv1D", "Conv2D", "Conv2DTranspose"})

Counts = dict[int, int]   # group id -> channels kept


def _prod(values) -> int:
    total = 1
    for v in values:
        total *= int(v)
    return total


@dataclass(frozen=True)
class CallWork:
    """One call's work at a given budget."""

    name: str
    kind: str        # conv | depthwise | matmul | elementwise | folded
    macs: int
    params: int
    elements: int    # input and output elements moved


class CostModel:
    """MACs, parameters and estimated latency of the model with ``counts`` channels kept per group."""

    def __init__(self, graph: ChannelGraph):
        self.graph = graph
        self.calls = [c for c in graph.calls if c.kind != "InputLayer"]

    def kept(self, layout: Layout, counts: Counts) -> int:
        """Width of a tensor laid out as ``layout`` with ``counts`` kept."""
        segments = self.graph.layout(layout).segments
        return sum(counts.get(group, width) for group, width in segments) * layout.positions

    def work(self, call: Call, counts: Counts) -> CallWork:
        """``call``'s MACs, parameters and elements moved with ``counts`` kept."""
        cin = self.kept(call.inputs[0], counts) if call.inputs else 0
        cout = self.kept(call.output, counts)
        out_space = _prod(call.output_shape[:-1])
        in_space = _prod(call.input_shapes[0][:-1]) if call.input_shapes else 0
        elements = sum(_prod(s[:-1]) * self.kept(l, counts) for s, l in zip(call.input_shapes, call.inputs))
        elements += out_space * cout
        if call.kind in CONVOLUTIONS:
            space = in_space if call.kind == "Conv2DTranspose" else out_space
            weights = call.kernel_area * cin * cout
            return CallWork(call.name, "conv", space * weights, weights + cout, elements)
        if call.kind == "Dense":
            return CallWork(call.name, "matmul", out_space * cin * cout, cin * cout + cout, elements)
        if call.kind == "SeparableConv2D":
            depthwise = call.kernel_area * cin * call.multiplier
            pointwise = cin * call.multiplier * cout
            return CallWork(call.name, "conv", out_space * (depthwise + pointwise), depthwise + pointwise + cout,
                            elements)
        if call.kind == "DepthwiseConv2D":
            weights = call.kernel_area * cout
            return CallWork(call.name, "depthwise", out_space * weights, weights + cout, elements)
        if call.kind in FOLDED:
            params = 4 * cout if call.kind == "BatchNormalization" else 0
            return CallWork(call.name, "folded", 0, params, 0)
        return CallWork(call.name, "elementwise", 0, 0, elements)

    def macs(self, counts: Counts) -> int:
        """Multiply-accumulates of one inference."""
        return sum(self.work(call, counts).macs for call in self.calls)

    def params(self, counts: Counts) -> int:
        """Weights and biases (BatchNorm's four vectors too)."""
        return sum(self.work(call, counts).params for call in self.calls)

    def per_call(self, counts: Counts) -> list[CallWork]:
        return [self.work(call, counts) for call in self.calls]


@dataclass(frozen=True)
class LatencyModel:
    """The device profile's per-operator formula applied to a CostModel, for one arithmetic (int8, float32)."""

    device: DeviceProfile
    dtype: str

    def ms(self, works: list[CallWork]) -> float:
        """Estimated milliseconds of one inference doing ``works``."""
        figures = self.device.estimate
        unit = figures
        gmacs = gmacs_for(figures, self.dtype)
        if gmacs is None and self.device.accelerator != Accelerator.CPU and figures.cpu_fallback is not None:
            unit = figures.cpu_fallback
            gmacs = gmacs_for(unit, self.dtype)
        scale = thread_scale(unit, self.device.threads) if unit is figures and \
            self.device.accelerator == Accelerator.CPU else 1.0
        size = ITEMSIZE.get(self.dtype, 4)
        total = figures.invoke_overhead_us / 1e3
        for index, work in enumerate(works):
            op = OpWork(index, work.name, work.kind, self.dtype, work.macs, work.elements,
                        int((work.elements + work.params) * size))
            total += op_time(op, unit, gmacs, scale)[0]
        return total


def latency_model(device: DeviceProfile, dtype: str | None = None) -> LatencyModel:
    """The latency model for ``device``: ``dtype`` or, by default, int8 where the profile has an int8 figure
    (channel pruning is followed by int8 quantization), else float32."""
    figures = device.estimate
    if dtype is None:
        dtype = "int8" if figures is not None and gmacs_for(figures, "int8") is not None else "float32"
    return LatencyModel(device, dtype)
