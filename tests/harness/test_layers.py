"""The package's layers read bottom-up as the data flows (../shared/ARCHITECTURE.md): nothing imports upward.

project, masking -> records -> bots, scoring -> sources, sinks -> gate, trainer, pipeline, scaffold -> review -> cli.
Imports inside functions count too (they run sooner or later).
"""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"
LAYERS = {
    "errors": 0,
    "registry": 0,
    "embeddings": 0,
    "project": 1,
    "masking": 1,
    "records": 2,
    "bots": 3,
    "scoring": 3,
    "sources": 4,
    "sinks": 4,
    "gate": 5,
    "trainer": 5,
    "pipeline": 5,
    "scaffold": 5,
    "probing": 5,
    "review": 6,
    "cli": 7,
    "pytest_plugin": 7,
    "__main__": 7,
}


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "harness" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_every_module_belongs_to_a_layer() -> None:
    tops = {p.stem if p.is_file() else p.name for p in HARNESS.iterdir() if p.suffix == ".py" or p.is_dir()}
    tops -= {"__init__", "__pycache__"}
    assert tops <= set(LAYERS), tops - set(LAYERS)


def test_nothing_imports_upward() -> None:
    upward = []
    for path in sorted(HARNESS.rglob("*.py")):
        module = "harness." + ".".join(path.relative_to(HARNESS).with_suffix("").parts)
        own = layer(module)
        if own is None:
            continue
        for line, imported in imports(path):
            other = layer(imported)
            if other is not None and other > own:
                upward.append(f"{path.relative_to(HARNESS.parent)}:{line}: {module} (layer {own}) imports {imported}")
    assert not upward, "\n".join(upward)
