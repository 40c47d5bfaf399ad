"""Recipes: one YAML file per device that turns a Keras model into a checked bundle."""
