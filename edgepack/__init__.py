"""edgepack: package Keras models for edge devices, with proof of what they cost."""

__version__ = "0.1.0"
