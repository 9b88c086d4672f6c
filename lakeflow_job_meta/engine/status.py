"""``lakeflow-job-meta status``: what the monitor has seen and done, read from the tool's tables.

Shows, per control table, the latest Delta version seen and the one applied (the lag), the last
good cycle, the lease holder, and per module the last outcome, error and who changed its
metadata last.
"""

from __future__ import annotations

from typing import Any

from lakeflow_job_meta.storage import open_tables
from lakeflow_job_meta.storage.naming import control_table_id
from lakeflow_job_meta.storage.state_store import StateKey, StateStore


def read_status(control_table: str, *, tables: Any = None) -> dict[str, Any]:
    tables = tables if tables is not None else open_tables(control_table)
    tables.require_exists()
    store = StateStore(tables.state, control_table_id(control_table), now=lambda: 0.0)
    state = store.get_many([StateKey.PROGRESS, StateKey.LEASE])
    progress = state.get("progress") or {}
    current = tables.control.version()
    applied = progress.get("applied_control_version")
    last_change: dict[str, dict[str, Any]] = {}
    for row in tables.control.read_all():
        module = row.get("module_name")
        when = row.get("updated_at") or row.get("created_at")
        seen = last_change.get(module)
        if seen is None or (when is not None and (seen["at"] is None or when > seen["at"])):
            last_change[module] = {"at": when, "by": row.get("updated_by") or row.get("created_by")}
    modules = {}
    for row in tables.jobs.read_all():
        module = row["module_name"]
        modules[f"{module} [{row.get('target')}]"] = {
            "module": module,
            "target": row.get("target"),
            "job_id": row.get("job_id"),
            "status": row.get("status"),
            "last_error": row.get("last_error"),
            "updated_at": row.get("updated_at"),
            "metadata_changed_at": (last_change.get(module) or {}).get("at"),
            "metadata_changed_by": (last_change.get(module) or {}).get("by"),
        }
    return {
        "control_table": control_table,
        "control_version": current,
        "applied_control_version": applied,
        "lag_versions": None if applied is None else max(0, current - int(applied)),
        "last_good_cycle_at": progress.get("last_good_cycle_at"),
        "lease": state.get("lease"),
        "modules": modules,
    }


def render_status(status: dict[str, Any]) -> str:
    lines = [
        f"control table {status['control_table']}: version {status['control_version']}, "
        f"applied {status['applied_control_version']} (lag {status['lag_versions']})",
        f"last good cycle: {status['last_good_cycle_at']}",
        f"lease: {status['lease']}",
    ]
    for key, info in sorted(status["modules"].items()):
        line = f"  {key}: job {info['job_id']} {info['status']}"
        if info["last_error"]:
            line += f" error: {info['last_error']}"
        if info["metadata_changed_by"]:
            line += (
                f" (metadata last changed by {info['metadata_changed_by']} at {info['metadata_changed_at']})"
            )
        lines.append(line)
    return "\n".join(lines)
