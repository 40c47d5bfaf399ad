"""Evaluating a .tflite model against data and, optionally, its Keras reference."""
