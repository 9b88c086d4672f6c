"""The Databricks bundle JSON schema from ``../shared/contracts``, made usable by Python's
``jsonschema`` (its Go-regex ``\\p{L}``/``\\p{N}`` classes rewritten), for the bundle tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO.parent / "shared" / "contracts" / "databricks_bundle_jsonschema.json"
JOB_REF = "#/$defs/github.com/databricks/cli/bundle/config/resources.Job"


def _python_patterns(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (_rewrite(v) if k == "pattern" and isinstance(v, str) else _python_patterns(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_python_patterns(v) for v in node]
    return node


def _rewrite(pattern: str) -> str:
    return pattern.replace(r"[\p{L}\p{N}]", r"[^\W_]").replace(r"\p{L}", r"[^\W\d_]").replace(r"\p{N}", r"\d")


def load_schema() -> dict[str, Any]:
    """The schema, or a skip naming where it was looked for (CI has ``shared/`` beside the repo)."""
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"bundle JSON schema not found at {SCHEMA_PATH} (shared contracts not checked out)")
    return _python_patterns(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def schema_errors(instance: Any, schema: dict[str, Any], ref: str | None = None) -> list[str]:
    """Every violation, as ``[path]: message``; ``ref`` validates against one definition."""
    import jsonschema

    target = {"$ref": ref, "$defs": schema["$defs"]} if ref else schema
    validator = jsonschema.Draft202012Validator(target)
    return [
        f"{list(e.absolute_path)}: {e.message[:300]}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]
