"""Training-time compression (prune-aware fine-tuning, weight clustering) with tfmot.

tfmot 0.8.1 only understands tf_keras (Keras 2) objects, so every model is rebuilt as a tf_keras
model for the fine-tuning (``bridge``), compressed there, stripped of its wrappers, and rebuilt in
the flavor it came in (Keras 3 or tf_keras) before it is saved. Nothing here imports TensorFlow
at module level.
"""
