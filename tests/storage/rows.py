"""Row builders shared by the storage tests (not a test module)."""

from __future__ import annotations

from typing import Any


def source(source_id: str, **overrides: Any) -> dict[str, Any]:
    """A control-table row of module ``m1`` as a YAML load would write it."""
    row = {
        "source_id": source_id,
        "module_name": "m1",
        "source_type": "sql",
        "execution_order": 1,
        "source_config": "{}",
        "target_config": "{}",
        "transformation_config": '{"task_type":"notebook"}',
        "is_active": True,
        "source_file": "m1.yaml",
    }
    row.update(overrides)
    return row
