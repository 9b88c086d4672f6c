"""The layer rules of docs/ARCHITECTURE.md, read from every import in the package (function-level
imports included, since they hide cycles just as well).

- ``metadata/`` and ``planning/`` are pure: no SDK, deltalake, pyspark, and nothing of
  ``storage/``, ``adapters/``, ``engine/``, the wiring or the CLI;
- ``storage/`` and ``adapters/`` never import ``engine/``, the wiring, the public API or the CLI;
- ``engine/`` never imports the wiring, the public API or the CLI (they build the engine);
- ``web/`` (the status page) may use the wiring like the CLI, but never the CLI or the public API;
- no import cycle between modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "lakeflow_job_meta"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# What each layer may import from the package (its own layer always). Leaf modules anyone may use.
LEAVES = {"errors", "vocabulary", "clock", "logs"}
ALLOWED = {
    "metadata": {"metadata"},
    "planning": {"planning", "metadata"},
    "storage": {"storage"},
    "adapters": {"adapters", "metadata", "planning", "storage"},
    "engine": {"engine", "adapters", "metadata", "planning", "storage"},
    # The status page sits beside the CLI: it may build through the wiring, never the CLI.
    "web": {"web", "engine", "adapters", "metadata", "planning", "storage", "wiring"},
}
PURE_LAYERS = ("metadata", "planning")
FORBIDDEN_IN_PURE = ("databricks", "deltalake", "pyspark", "watchdog")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imports(path: Path, name: str, known: set[str]) -> Iterator[str]:
    """Every module ``path`` imports, anywhere in the file; ``from pkg import sub`` names the
    submodule when ``sub`` is one."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in known else base


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {
        name: {target for target in imports(path, name, known) if target in known and target != name}
        for name, path in found.items()
    }


def test_pure_layers_import_no_sdk_or_io() -> None:
    found = modules()
    bad = [
        f"{name} imports {target}"
        for name, path in found.items()
        if layer(name) in PURE_LAYERS
        for target in imports(path, name, set(found))
        if target.split(".")[0] in FORBIDDEN_IN_PURE
    ]
    assert bad == []


def test_imports_go_down_the_layers_only() -> None:
    bad = []
    for name, targets in graph().items():
        allowed = ALLOWED.get(layer(name))
        if allowed is None:
            continue  # wiring, api, cli, main and the package itself sit on top
        for target in targets:
            target_layer = layer(target)
            if target == PACKAGE or (target_layer not in allowed and target_layer not in LEAVES):
                bad.append(f"{name} -> {target}")
    assert sorted(bad) == []


def test_leaf_modules_import_nothing_of_the_package_but_leaves() -> None:
    bad = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        if layer(name) in LEAVES
        for target in targets
        if layer(target) not in LEAVES
    ]
    assert bad == []


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert [" -> ".join(cycle) for cycle in cycles] == []


def test_the_rules_see_function_level_imports() -> None:
    """The reader must not miss an import inside a function (how cycles used to hide)."""
    edges = graph()
    assert f"{PACKAGE}.api" in edges[PACKAGE]  # lazy public names, function-level only
    assert f"{PACKAGE}.storage.delta_rs" in edges[f"{PACKAGE}.storage"]
