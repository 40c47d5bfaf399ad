"""Which loss fine-tuning uses, why, whether the targets fit the model's output, and val metrics."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from edgepack.errors import DataError

# Loss spellings in compile configs (function names, aliases, class names) -> edgepack's names.
_ALIASES = {
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy",
    "CategoricalCrossentropy": "categorical_crossentropy",
    "binary_crossentropy": "binary_crossentropy",
    "BinaryCrossentropy": "binary_crossentropy",
    "mse": "mean_squared_error", "mean_squared_error": "mean_squared_error", "MeanSquaredError": "mean_squared_error",
    "mae": "mean_absolute_error", "mean_absolute_error": "mean_absolute_error",
    "MeanAbsoluteError": "mean_absolute_error",
}
CLASS_NAMES = {
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "mean_squared_error": "MeanSquaredError",
    "mean_absolute_error": "MeanAbsoluteError",
}
_CLASSIFICATION = {"sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy"}
_PROBABILITY = {"sparse_categorical_crossentropy": "softmax", "categorical_crossentropy": "softmax",
                "binary_crossentropy": "sigmoid"}


class LossChoice(BaseModel):
    """The loss used for fine-tuning and where it came from."""

    model_config = ConfigDict(extra="forbid")

    name: str
    from_logits: bool | None = None
    source: Literal["compile_config", "data"]
    reason: str

    @property
    def is_classification(self) -> bool:
        return self.name in _CLASSIFICATION

    def loss_object(self, keras_module):
        """This loss as an object of ``keras_module`` (Keras 3 or tf_keras)."""
        cls = getattr(keras_module.losses, CLASS_NAMES[self.name])
        return cls(from_logits=bool(self.from_logits)) if self.from_logits is not None else cls()

    def describe(self) -> str:
        logits = "" if self.from_logits is None else f", from_logits={self.from_logits}"
        return f"{self.name}{logits} ({self.reason})"


def last_activation(model, index: int = 0) -> str:
    """Name of the activation that produces the model's output ``index`` ('linear' when there is none)."""
    layer = model.outputs[index]._keras_history[0]
    kind = type(layer).__name__
    if kind == "Softmax":
        return "softmax"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None) or (activation if isinstance(activation, str) else None)
    return name or "linear"


def _loss_of_output(loss, output: tuple[str, int, int] | None):
    """The entry of a per-output loss (a list, or a dict by output name) for ``output`` = (name, index, count)."""
    if isinstance(loss, (list, tuple)):
        if len(loss) == 1:
            return loss[0]
        return loss[output[1]] if output is not None and len(loss) == output[2] else None
    if isinstance(loss, dict) and "class_name" not in loss:
        if output is not None and output[0] in loss:
            return loss[output[0]]
        return next(iter(loss.values())) if len(loss) == 1 else None
    return loss


def _from_compile(compile_config: dict | None, output: tuple[str, int, int] | None = None
                  ) -> tuple[str, bool] | tuple[None, str | None]:
    if not compile_config:
        return None, None
    loss = _loss_of_output(compile_config.get("loss"), output)
    if isinstance(loss, str) and loss in _ALIASES:
        return _ALIASES[loss], False
    if isinstance(loss, dict) and loss.get("class_name") in _ALIASES:
        config = loss.get("config") or {}
        return _ALIASES[loss["class_name"]], bool(config.get("from_logits", False))
    if loss is None:
        return None, None
    shown = loss.get("class_name") if isinstance(loss, dict) else loss
    return None, f"the compile config's loss {shown!r} is not one edgepack knows"


def _is_one_hot(y: np.ndarray) -> bool:
    return y.ndim == 2 and y.shape[1] > 1 and bool(np.isin(y, (0, 1)).all()) and bool((y.sum(axis=1) == 1).all())


def choose_loss(compile_config: dict | None, y: np.ndarray, output_width: int, activation: str,
                output: tuple[str, int, int] | None = None) -> LossChoice:
    """The compile config's loss when it names a known one, else one inferred from the targets ``y``.

    ``output`` = (name, index, number of outputs) picks the entry of a per-output loss."""
    name, detail = _from_compile(compile_config, output)
    if name is not None:
        return LossChoice(name=name, from_logits=detail if name in _CLASSIFICATION else None,
                          source="compile_config", reason="from the model's compile config")
    prefix = f"{detail}; " if isinstance(detail, str) else "no loss in the model's compile config; "
    integral = y.dtype.kind in "biu"
    if integral and output_width == 1:
        name, why = "binary_crossentropy", "integer labels and one output"
    elif integral:
        name, why = "sparse_categorical_crossentropy", "integer labels"
    elif y.dtype.kind == "f" and _is_one_hot(y):
        name, why = "categorical_crossentropy", "one-hot targets"
    else:
        name, why = "mean_squared_error", "float targets"
    from_logits = None
    if name in _PROBABILITY:
        from_logits = activation != _PROBABILITY[name]
        why += f", last activation {activation} so from_logits={from_logits}"
    return LossChoice(name=name, from_logits=from_logits, source="data", reason=f"{prefix}inferred from {why}")


def require_targets(y: np.ndarray | None, source: str) -> np.ndarray:
    """The targets, or DataError (exit 3) when the data set has none."""
    if y is None:
        raise DataError(f"{source} has inputs but no targets; fine-tuning needs labels",
                        hint="save the targets in the .npz as 'y' (or name them with --y-key)")
    return y


def check_targets(loss: LossChoice, y: np.ndarray | None, output_shape: tuple, source: str) -> np.ndarray:
    """Raise DataError (exit 3) when ``y`` cannot train a model with ``output_shape``; return y ready for fit."""
    y = require_targets(y, source)
    width = int(output_shape[-1]) if output_shape[-1] is not None else None
    if loss.name in ("sparse_categorical_crossentropy", "binary_crossentropy"):
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
            raise DataError(f"{source}: labels have shape {y.shape} but {loss.name} needs one class index per sample",
                            hint="give integer class indices of shape (N,)")
        y = y.reshape(-1)
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise DataError(f"{source}: labels are not whole numbers but the loss is {loss.name}")
        low, high = int(y.min()), int(y.max())
        classes = 2 if loss.name == "binary_crossentropy" else width
        if low < 0 or (classes is not None and high >= classes):
            raise DataError(f"{source}: labels range from {low} to {high} but the model has {width} output(s) "
                            f"(classes 0..{(classes or 1) - 1})",
                            hint="check that the data belongs to this model and that labels start at 0")
        return y.astype(np.int64 if loss.name != "binary_crossentropy" else np.float32)
    target = tuple(int(d) for d in output_shape[1:])
    got = tuple(y.shape[1:])
    if loss.name == "categorical_crossentropy" and got != target:
        raise DataError(f"{source}: one-hot targets have width {got[-1] if got else 1} but the model outputs "
                        f"{width} classes", hint="one-hot encode with as many columns as the model has outputs")
    if got != target and not (got == () and target == (1,)):
        raise DataError(f"{source}: targets have shape {y.shape} but the model outputs {('N', *target)}",
                        hint="give one target row per sample, shaped like the model output")
    return y.astype(np.float32).reshape((len(y), *target))


def metric(loss: LossChoice, predictions: np.ndarray, y: np.ndarray) -> tuple[str, float]:
    """Accuracy for classification losses, mean squared error otherwise."""
    if loss.name == "binary_crossentropy":
        threshold = 0.0 if loss.from_logits else 0.5
        return "accuracy", float(np.mean((predictions.reshape(-1) > threshold) == (y.reshape(-1) > 0.5)))
    if loss.is_classification:
        labels = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)
        return "accuracy", float(np.mean(predictions.argmax(axis=1) == labels))
    return "mse", float(np.mean((predictions.reshape(y.shape) - y) ** 2))
