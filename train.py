"""``python train.py ...`` is ``fer-train ...``: see fer_lightning/cli/train.py and conf/train.yaml."""

from fer_lightning.cli.train import main

if __name__ == "__main__":
    main()
