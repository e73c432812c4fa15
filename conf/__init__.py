"""The Hydra configs, shipped inside the wheel as fer_lightning.conf (see pyproject.toml)."""
