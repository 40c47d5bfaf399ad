"""``edgepack tune``: search a recipe's space with Optuna for configurations that pass its gates."""
