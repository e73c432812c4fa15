"""Optuna studies over the training config: tune(cfg), persistent and resumable."""
