"""``python tune.py ...`` is ``fer-tune ...``: see fer_lightning/cli/tune.py and conf/tune.yaml."""

from fer_lightning.cli.tune import main

if __name__ == "__main__":
    main()
