"""Which channels of a Keras model must be removed together: the channel dependency groups.

The model's functional graph (nested models inlined, as ``compress.bridge`` flattens them) is walked
in execution order and every tensor gets a *layout*: the channel groups its last axis is made of, in
order, and how many spatial positions a Flatten spread each channel over. A Conv/Dense layer opens a
new group with its output channels. Layers that treat channels one by one (BatchNormalization,
DepthwiseConv2D, activations, pooling, padding, dropout) carry their input's layout; element-wise
merges (Add, Subtract, Multiply, Maximum, Minimum, Average) join the groups of their inputs (a
residual chain, a squeeze-and-excitation gate), so one index is removed from every tensor at once;
Concatenate lines its inputs' groups up one after another (the offsets come from the layout);
Flatten multiplies the positions (channel ``c`` of an ``H×W×C`` tensor is rows ``p·C + c``).

A group is *fenced* (never pruned) when it reaches a model input or output, or a layer the walk
cannot follow (Lambda, Reshape, Softmax or LayerNormalization over channels, a grouped convolution,
a layer called twice, a custom layer): its channels keep their width and the reason is listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgepack.compress import bridge

PRODUCERS = frozenset({"Conv1D", "Conv2D", "Dense", "SeparableConv2D", "Conv2DTranspose"})
CHANNEL_WEIGHTS = frozenset({"BatchNormalization", "DepthwiseConv2D"})
PASS_THROUGH = frozenset({
    "ReLU", "LeakyReLU", "ELU", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity", "MaxPooling1D", "MaxPooling2D",
    "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D",
    "UpSampling1D", "UpSampling2D",
})
MERGES = frozenset({"Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average"})
# Keras 3 operations applied between layers (``x + 3``, MobileNetV3's hard-sigmoid) that act per element.
UNARY_OPS = frozenset({"Negative", "Square", "Sqrt", "Absolute", "Exp", "Tanh", "Sigmoid", "Relu", "Relu6",
                       "Silu", "HardSigmoid", "HardSilu"})
BINARY_OPS = frozenset({"Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum"})
CHANNEL_MIXING_ACTIVATIONS = frozenset({"softmax", "log_softmax"})


@dataclass(frozen=True)
class Layout:
    """A tensor's last axis: ``segments`` of (group, width) in order; ``positions`` spatial positions per
    channel after a Flatten (1 before any)."""

    segments: tuple[tuple[int, int], ...]
    positions: int = 1

    @property
    def width(self) -> int:
        return sum(width for _, width in self.segments) * self.positions

    @property
    def groups(self) -> list[int]:
        return [group for group, _ in self.segments]


@dataclass
class Use:
    """One layer's part in the channels of a tensor: ``produces`` (its output channels open the group),
    ``carries`` (per-channel weights: BatchNorm, depthwise) or ``consumes`` (its kernel's input rows)."""

    layer: str
    kind: str
    role: str
    layout: Layout


@dataclass
class Group:
    """Channels removed together: the layers that make them, carry them and read them."""

    id: int
    width: int
    producers: list[str] = field(default_factory=list)
    fences: list[str] = field(default_factory=list)

    @property
    def prunable(self) -> bool:
        return bool(self.producers) and not self.fences


@dataclass(frozen=True)
class Call:
    """One layer call, as the cost model reads it: shapes (batch left out) and the layouts of its tensors."""

    name: str
    kind: str
    inputs: tuple[Layout, ...]
    output: Layout
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    kernel_area: int = 1
    multiplier: int = 1


@dataclass
class ChannelGraph:
    """The analysed model: its groups (after merging), every layer's uses, and each layer's class."""

    groups: dict[int, Group]
    uses: list[Use]
    kinds: dict[str, str]
    calls: list[Call] = field(default_factory=list)
    _parent: dict[int, int] = field(default_factory=dict, repr=False)

    def root(self, group: int) -> int:
        """The group ``group`` was merged into."""
        while self._parent.get(group, group) != group:
            group = self._parent[group]
        return group

    def layout(self, layout: Layout) -> Layout:
        """``layout`` with its groups replaced by the groups they were merged into."""
        return Layout(tuple((self.root(g), w) for g, w in layout.segments), layout.positions)

    @property
    def prunable(self) -> list[Group]:
        """The groups that may lose channels, in the order their first producer runs."""
        return [g for g in self.groups.values() if g.prunable]

    @property
    def fenced(self) -> list[Group]:
        """Groups with producers that stay whole, each with its reasons."""
        return [g for g in self.groups.values() if g.producers and g.fences]

    def uses_of(self, group: int) -> list[Use]:
        """Every use whose tensor holds channels of ``group``."""
        return [u for u in self.uses if group in self.layout(u.layout).groups]

    def group_of(self, layer: str) -> Group | None:
        """The group whose channels ``layer`` produces (None for a layer that produces none)."""
        for use in self.uses:
            if use.layer == layer and use.role == "produces":
                return self.groups[self.root(use.layout.segments[0][0])]
        return None


class _Analysis:
    def __init__(self, exclude):
        self.groups: dict[int, Group] = {}
        self.parent: dict[int, int] = {}
        self.uses: list[Use] = []
        self.kinds: dict[str, str] = {}
        self.exclude = exclude

    def new_group(self, width: int, producer: str | None = None, fence: str | None = None) -> Layout:
        gid = len(self.groups)
        self.groups[gid] = Group(gid, int(width), [producer] if producer else [], [fence] if fence else [])
        self.parent[gid] = gid
        return Layout(((gid, int(width)),))

    def root(self, gid: int) -> int:
        while self.parent[gid] != gid:
            self.parent[gid] = self.parent[self.parent[gid]]
            gid = self.parent[gid]
        return gid

    def union(self, a: int, b: int) -> None:
        a, b = self.root(a), self.root(b)
        if a == b:
            return
        keep, gone = min(a, b), max(a, b)
        self.parent[gone] = keep
        self.groups[keep].producers += self.groups[gone].producers
        self.groups[keep].fences += self.groups[gone].fences

    def fence(self, layout: Layout | None, reason: str) -> None:
        for gid in ([] if layout is None else layout.groups):
            fences = self.groups[self.root(gid)].fences
            if reason not in fences:
                fences.append(reason)

    def use(self, name: str, kind: str, role: str, layout: Layout) -> None:
        self.uses.append(Use(name, kind, role, layout))


def _channels_last(layer, rank: int) -> bool:
    axis = layer.get_config().get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    return axis in (-1, rank - 1)


def _follow(a: _Analysis, name: str, layer, inputs: list, layouts: list[Layout], out_shape) -> Layout:
    """The output layout of one layer call (recording its uses), given its inputs' layouts."""
    kind = type(layer).__name__
    config = layer.get_config() if hasattr(layer, "get_config") else {}
    width = int(out_shape[-1]) if out_shape and out_shape[-1] is not None else 0
    first = layouts[0] if layouts else None
    if not bridge_builtin(layer):
        return _fenced(a, layouts, width, f"{name}: a layer of the model's own class ({kind})")
    if kind in PRODUCERS:
        return _producer(a, name, kind, config, first, width)
    if kind in CHANNEL_WEIGHTS:
        rank = len(inputs[0].shape)
        if kind == "BatchNormalization" and not _channels_last(layer, rank):
            return _fenced(a, layouts, width, f"{name}: BatchNormalization over another axis than the channels")
        if kind == "DepthwiseConv2D" and int(config.get("depth_multiplier", 1)) != 1:
            return _fenced(a, layouts, width, f"{name}: DepthwiseConv2D with depth_multiplier > 1")
        return _carry(a, name, kind, first, width, weights=True)
    if kind in PASS_THROUGH or (kind == "Activation" and config.get("activation") not in CHANNEL_MIXING_ACTIVATIONS):
        return _carry(a, name, kind, first, width)
    if kind == "Rescaling" and all(isinstance(config.get(k, 0), (int, float)) for k in ("scale", "offset")):
        return _carry(a, name, kind, first, width)
    if kind in MERGES or (kind in BINARY_OPS and _is_op(layer)):
        return _merge(a, name, layouts, [tuple(t.shape) for t in inputs], out_shape)
    if kind in UNARY_OPS and _is_op(layer):
        return _carry(a, name, kind, first, width)
    if kind == "Concatenate":
        return _concatenate(a, name, layer, inputs, layouts, out_shape)
    if kind == "Flatten":
        shape = tuple(inputs[0].shape)
        positions = 1
        for dim in shape[1:-1]:
            positions *= int(dim)
        return Layout(first.segments, first.positions * positions) if positions else _fenced(
            a, layouts, width, f"{name}: Flatten of an input without a fixed size")
    return _fenced(a, layouts, width, f"{name}: {kind} is a layer channel pruning cannot follow")


def bridge_builtin(layer) -> bool:
    """True for Keras's own layers and operations (the walk knows what they do to channels)."""
    return type(layer).__module__.startswith(("keras.", "tf_keras."))


def _is_op(layer) -> bool:
    return type(layer).__module__.startswith("keras.src.ops")


def _fenced(a: _Analysis, layouts: list[Layout], width: int, reason: str) -> Layout:
    for layout in layouts:
        a.fence(layout, reason)
    return a.new_group(width, fence=reason)


def _producer(a: _Analysis, name: str, kind: str, config: dict, first: Layout, width: int) -> Layout:
    if int(config.get("groups", 1) or 1) != 1:
        return _fenced(a, [first], width, f"{name}: a grouped convolution")
    if first.positions != 1 and kind != "Dense":
        return _fenced(a, [first], width, f"{name}: {kind} after a Flatten")
    a.use(name, kind, "consumes", first)
    excluded = a.exclude is not None and a.exclude.search(name)
    layout = a.new_group(width, producer=name, fence=f"{name}: excluded by --exclude" if excluded else None)
    a.use(name, kind, "produces", layout)
    return layout


def _carry(a: _Analysis, name: str, kind: str, first: Layout, width: int, weights: bool = False) -> Layout:
    if first is None or first.width != width:
        return _fenced(a, [first] if first else [], width, f"{name}: {kind} changes the channel count")
    if weights:
        a.use(name, kind, "carries", first)
    return first


def _merge(a: _Analysis, name: str, layouts: list[Layout], shapes: list[tuple], out_shape) -> Layout:
    """Element-wise merge: inputs as wide as the output share their channel indices (broadcast inputs
    of width 1 take no part)."""
    width = int(out_shape[-1])
    full = [layout for layout, shape in zip(layouts, shapes) if len(shape) > 1 and shape[-1] == width]
    if not full:
        return _fenced(a, layouts, width, f"{name}: merge whose inputs broadcast over the channels")
    if any(len(layout.segments) != 1 or layout.positions != 1 for layout in full):
        return _fenced(a, layouts, width, f"{name}: merge of concatenated or flattened channels")
    if any(len(shape) > 1 and shape[-1] not in (1, width) for shape in shapes):
        return _fenced(a, layouts, width, f"{name}: merge of inputs of different widths")
    for layout in full[1:]:
        a.union(full[0].segments[0][0], layout.segments[0][0])
    return full[0]


def _concatenate(a: _Analysis, name: str, layer, inputs: list, layouts: list[Layout], out_shape) -> Layout:
    rank = len(out_shape)
    if not _channels_last(layer, rank):
        return _merge(a, name, layouts, [tuple(t.shape) for t in inputs], out_shape)
    if any(layout.positions != 1 for layout in layouts):
        return _fenced(a, layouts, int(out_shape[-1]), f"{name}: Concatenate of flattened channels")
    return Layout(tuple(segment for layout in layouts for segment in layout.segments))


def analyze(model, exclude=None) -> ChannelGraph:
    """The channel groups of a flat ``model`` (no nested models: see ``compress.bridge.rebuild``).

    ``exclude`` (a compiled regex) fences the groups whose producing layer's name it matches."""
    a = _Analysis(exclude)
    layouts: dict[int, Layout] = {}
    calls: list[Call] = []
    for name, layer, inputs, outputs in graph_nodes(model):
        a.kinds[name] = type(layer).__name__
        if type(layer).__name__ == "InputLayer":
            for tensor in outputs:
                layouts[id(tensor)] = a.new_group(int(tensor.shape[-1]), fence="the model's input")
            continue
        if len(layer._inbound_nodes) > 1 and not _is_op(layer):
            found = [layouts[id(t)] for t in inputs]
            reason = f"{name}: a layer called more than once"
            result = _fenced(a, found, int(outputs[0].shape[-1]), reason)
            for tensor in outputs:
                layouts[id(tensor)] = result
            continue
        found = [layouts[id(t)] for t in inputs]
        for tensor in outputs:
            layouts[id(tensor)] = _follow(a, name, layer, inputs, found, tuple(tensor.shape))
        calls.append(_call(name, layer, inputs, found, outputs[0], layouts[id(outputs[0])]))
    for tensor in model.outputs:
        a.fence(layouts[id(tensor)], "the model's output")
    for group in a.groups.values():
        group.fences = list(dict.fromkeys(group.fences))
    roots = {gid: a.groups[gid] for gid in a.groups if a.root(gid) == gid}
    return ChannelGraph(roots, a.uses, a.kinds, calls, {gid: a.root(gid) for gid in a.groups})


def _dims(shape) -> tuple[int, ...]:
    return tuple(int(d) if d is not None else 1 for d in tuple(shape)[1:])


def _call(name: str, layer, inputs: list, layouts: list[Layout], output, layout: Layout) -> Call:
    config = layer.get_config() if hasattr(layer, "get_config") else {}
    area = 1
    for size in config.get("kernel_size", ()) or ():
        area *= int(size)
    return Call(name, type(layer).__name__, tuple(layouts), layout, tuple(_dims(t.shape) for t in inputs),
                _dims(output.shape), area, int(config.get("depth_multiplier", 1) or 1))


def graph_nodes(model):
    """Every layer call of a flat ``model`` in execution order: (name, layer, input tensors, output tensors)."""
    tf = bridge.import_tf()
    keras3 = bridge.flavor_of(model) == bridge.KERAS3
    if keras3:
        import keras

        is_tensor = lambda x: isinstance(x, keras.KerasTensor)  # noqa: E731
        call_args = lambda node: (node.arguments.args, node.arguments.kwargs)  # noqa: E731
    else:
        import tf_keras

        is_tensor = lambda x: hasattr(x, "_keras_history") and tf_keras.backend.is_keras_tensor(x)  # noqa: E731
        call_args = lambda node: (node.call_args, node.call_kwargs)  # noqa: E731
    names = {id(layer): name for name, layer in bridge.leaf_layers(model)}
    seen: set[int] = set()
    order: list = []

    def visit(tensor):
        layer, node_index, _ = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        if id(node) in seen:
            return
        seen.add(id(node))
        args, kwargs = call_args(node)
        inputs = [x for x in tf.nest.flatten([list(args), dict(kwargs or {})]) if is_tensor(x)]
        for x in inputs:
            visit(x)
        name = names.get(id(layer), getattr(layer, "name", type(layer).__name__))
        order.append((name, layer, inputs, list(tf.nest.flatten(node.outputs))))

    for tensor in model.inputs:
        visit(tensor)
    for tensor in model.outputs:
        visit(tensor)
    return order
