"""``python stack.py ...`` is ``fer-stack ...``: see fer_lightning/cli/stack.py and conf/stack.yaml."""

from fer_lightning.cli.stack import main

if __name__ == "__main__":
    main()
