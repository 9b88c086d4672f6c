"""Shared builders for the planning tests."""

from __future__ import annotations

import re
import sys
import types
from typing import Any

import pytest

try:
    import lakeflow_job_meta.metadata.task_keys  # noqa: F401
except ImportError:  # TEMPORARY until metadata/task_keys.py lands: same contract, simplest rule.
    _stub = types.ModuleType("lakeflow_job_meta.metadata.task_keys")
    _stub.sanitize_task_key = lambda source_id: re.sub(r"[^A-Za-z0-9_-]", "_", source_id)[:100]  # type: ignore[attr-defined]
    sys.modules["lakeflow_job_meta.metadata.task_keys"] = _stub

from lakeflow_job_meta.metadata.models import Module, Source
from lakeflow_job_meta.planning.compiler import CompileContext


def src(source_id: str, order: int = 1, module: str = "m", active: bool = True, **tc: Any) -> Source:
    tc.setdefault("task_type", "notebook")
    if tc["task_type"] == "notebook":
        tc.setdefault("notebook_path", f"/Workspace/nb/{source_id}")
    return Source(
        source_id=source_id,
        module_name=module,
        source_type="sql",
        execution_order=order,
        transformation_config=tc,
        is_active=active,
    )


def mod(name: str = "m", *sources: Source, **settings: Any) -> Module:
    return Module(name=name, sources=tuple(sources), settings=settings)


@pytest.fixture
def ctx() -> CompileContext:
    return CompileContext(
        control_table="main.meta.etl_control",
        control_table_id="etl_control",
        default_warehouse_id="wh-ctx",
        managed_sql_root="/Workspace/Shared/ljm/etl_control",
    )
