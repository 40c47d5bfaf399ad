"""Pipeline steps: each takes a typed config and produces a model artifact."""
