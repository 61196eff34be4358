"""The floors of ARCHITECTURE.md hold: no module imports from a floor above it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent
# Django's wiring, which any floor's code may trigger but none imports for logic.
WIRING = {"endpoint.settings", "endpoint.apps", "endpoint.models", "endpoint.migrations"}


def _layers() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (floors,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [{name.strip() for name in layer.replace("|", ":").split(":")} for layer in floors["layers"]]


def test_no_module_imports_from_a_floor_above():
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_every_module_of_endpoint_has_a_floor():
    """A new module at endpoint/'s root must be given a floor, or the rules can't see it."""
    placed = set().union(*_layers())
    modules = {
        f"endpoint.{path.stem if path.suffix else path.name}"
        for path in (ROOT / "endpoint").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    assert modules - placed - WIRING == set()


def test_the_core_imports_no_app():
    layers = _layers()
    assert layers[-1] == {"endpoint.core"}
    assert {"keys", "logs", "chat"} <= set().union(*layers[:-1])
