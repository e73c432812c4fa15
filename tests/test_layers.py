"""The package's layers, as the README draws them: each imports only from the layers before it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fer_lightning"
# In order; a module may import from its own layer and the ones before it, never after.
LAYERS = ["fer2013", "errors", "precision", "host_memory", "machine", "figures", "data", "models", "inference",
          "training", "tuning", "ensemble", "faces", "predict", "bench", "cli"]


def layer_of(module: str) -> str:
    """'fer_lightning.training.run_dir' -> 'training'."""
    return module.split(".")[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    return {name for name in names if name.startswith("fer_lightning.")}


def test_every_module_lives_in_a_known_layer() -> None:
    found = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in PACKAGE.rglob("*.py")}
    assert found - {"__init__", "conf"} == set(LAYERS)


def test_no_module_imports_from_a_later_layer() -> None:
    upward = []
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if layer in ("__init__", "conf"):
            continue
        for module in imported_modules(path):
            if LAYERS.index(layer_of(module)) > LAYERS.index(layer):
                upward.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not upward, upward
