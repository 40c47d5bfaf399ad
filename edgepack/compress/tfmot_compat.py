"""tfmot 0.8.1 on TensorFlow 2.16 and later: its pruning registry knows the recurrent cells by
``tf.compat.v1/v2.keras.layers.*Cell``, which are now Keras 3 classes, not the tf_keras cells tfmot
wraps, so ``prune_low_magnitude`` refuses every LSTM, GRU and SimpleRNN. Its clustering registry lists the
tf_keras cells and works. Registering the tf_keras cells with the weights tfmot names for the others
(kernel and recurrent kernel) restores what tfmot documents."""

from __future__ import annotations

RNN_CELL_WEIGHTS = ["kernel", "recurrent_kernel"]


def register_tf_keras_rnn_cells() -> None:
    """Add tf_keras's GRUCell, LSTMCell and SimpleRNNCell to tfmot's pruning registry (idempotent)."""
    import tf_keras
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    for cell in (tf_keras.layers.GRUCell, tf_keras.layers.LSTMCell, tf_keras.layers.SimpleRNNCell):
        PruneRegistry._RNN_CELLS_WEIGHTS_MAP.setdefault(cell, list(RNN_CELL_WEIGHTS))
