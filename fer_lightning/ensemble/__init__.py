"""Stacked ensembles fitted on the saved PublicTest logits of several runs."""
