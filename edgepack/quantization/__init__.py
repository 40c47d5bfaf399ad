"""Conversion to .tflite: plain (convert.py), with chosen layers in float (selective.py, layers.py), and
accuracy control (control.py)."""
