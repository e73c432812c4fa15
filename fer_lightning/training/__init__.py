"""One training run: train(cfg), its callbacks, its reports, and the run dir it leaves behind."""
