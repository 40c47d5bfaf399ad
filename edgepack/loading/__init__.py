"""Loading user inputs: Keras models and data sets, checked before any heavy work."""
