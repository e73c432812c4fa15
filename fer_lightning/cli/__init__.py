"""The commands: each a Hydra app over conf/ with a console script (fer-train, fer-predict, ...)."""
