"""Facial emotion recognition on FER-2013 with PyTorch Lightning and Hydra.

TensorBoard writes its event files through TensorFlow wherever TensorFlow is installed (the `keras` extra, for
fer-bench's Keras yardstick, or a user's own environment), and torch's SummaryWriter then imports all of it: on a
2-core Zen 4 EPYC, 7 s more at the start of every fer-train, fer-stack and fer-analyze, 640 MiB more memory and
TensorFlow's log lines on stderr, for the same files. TensorBoard takes a module named ``tensorboard.compat.notf``
as the sign to use its own TensorFlow-free writer (its build without TensorFlow); registering an empty one, before
anything imports TensorBoard, costs nothing and leaves TensorFlow itself importable for whoever wants it.
"""

import importlib.resources
import sys
from types import ModuleType

sys.modules.setdefault("tensorboard.compat.notf", ModuleType("tensorboard.compat.notf"))

# The Hydra configs: conf/ at the top of a checkout, fer_lightning/conf inside an installed wheel (pyproject.toml maps
# the package to either), for the commands and for Python callers that compose them.
CONF_DIR = str(importlib.resources.files("fer_lightning.conf"))
