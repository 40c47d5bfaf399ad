"""Distillation while fine-tuning: the student also learns the original model's soft outputs.

The teacher's outputs on the training data are computed once, before training, and travel with the
labels (``[label columns | teacher outputs]``), so no second model sits in memory. For
classification the soft part is Hinton's KL divergence between the teacher's and the student's
outputs softened by ``temperature`` (times temperature squared); for regression it is the squared
error to the teacher's output. ``alpha`` weighs the hard-label loss, ``1 - alpha`` the soft one.
"""

from __future__ import annotations

import numpy as np

from edgepack.compress.loss import LossChoice

EPSILON = 1e-7


def pack_targets(y: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """Labels and teacher outputs side by side, as the distillation loss reads them."""
    labels = y.reshape(len(y), -1).astype(np.float32)
    return np.concatenate([labels, teacher.reshape(len(teacher), -1).astype(np.float32)], axis=1)


def distillation_loss(loss: LossChoice, *, temperature: float, alpha: float, outputs: int):
    """A tf_keras-compatible loss function over packed targets (see ``pack_targets``)."""
    import tensorflow as tf
    import tf_keras

    hard_loss = loss.loss_object(tf_keras)
    logits = bool(loss.from_logits)

    def soften(values):
        log_values = values if logits else tf.math.log(tf.clip_by_value(values, EPSILON, 1.0))
        return tf.nn.softmax(log_values / temperature, axis=-1)

    def loss_fn(packed, prediction):
        labels, teacher = packed[:, :-outputs], packed[:, -outputs:]
        if labels.shape[-1] == 1 and loss.name == "sparse_categorical_crossentropy":
            labels = labels[:, 0]
        hard = hard_loss(labels, prediction)
        if loss.is_classification and outputs > 1:
            p, q = soften(teacher), soften(prediction)
            soft = tf.reduce_mean(tf.reduce_sum(p * (tf.math.log(p + EPSILON) - tf.math.log(q + EPSILON)), axis=-1))
            soft = soft * temperature ** 2
        else:
            soft = tf.reduce_mean(tf.square(prediction - teacher))
        return alpha * hard + (1.0 - alpha) * soft

    return loss_fn
