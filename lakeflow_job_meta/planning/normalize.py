"""Compare desired settings with what ``jobs/get`` returns, without false drift.

The service fills in values nobody sent (empty notification blocks, ``timeout_seconds: 0``,
``run_if: ALL_SUCCESS``, ``source: WORKSPACE``, cluster defaults ...) and keeps ``run_as`` when a
reset omits it. :func:`normalize_for_compare` removes all of those, and is applied to *both* sides,
so a difference that is only a server default is never drift, while any value the metadata sets
still compares. The price: a change of a value equal to a server default (say ``timeout_seconds``
from 60 to 0) shows as "field removed" rather than "set to 0"; the spec hash still catches it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lakeflow_job_meta.planning.canonical import KEYED_JOB_LISTS, canonical_settings
from lakeflow_job_meta.planning.compiler import prune_empty

NOTIFICATION_BLOCKS: tuple[str, ...] = (
    "email_notifications",
    "webhook_notifications",
    "notification_settings",
)
CLOUD_ATTRIBUTES: tuple[str, ...] = ("aws_attributes", "azure_attributes", "gcp_attributes")
# Task blocks whose ``source: WORKSPACE`` the service adds (or a user may write) with no effect.
SOURCE_BLOCKS: tuple[str, ...] = ("notebook_task", "spark_python_task", "dbt_task")
# Job-level values equal to what the service does when the field is absent.
JOB_DEFAULTS: dict[str, Any] = {
    "timeout_seconds": 0,
    "max_concurrent_runs": 1,
    "edit_mode": "EDITABLE",
    "format": "MULTI_TASK",
}
TASK_DEFAULTS: dict[str, Any] = {"timeout_seconds": 0, "run_if": "ALL_SUCCESS"}
CLUSTER_DEFAULTS: dict[str, Any] = {"data_security_mode": "SINGLE_USER", "enable_elastic_disk": False}
# Lists whose elements are identified by a key, for readable diff paths.
KEYED_LISTS: dict[str, str] = {**KEYED_JOB_LISTS, "depends_on": "task_key"}


@dataclass(frozen=True)
class FieldChange:
    """One differing field; ``None`` on a side means the field is absent there."""

    path: str
    desired: Any
    live: Any

    def __str__(self) -> str:
        if self.live is None:
            return f"+ {self.path}: {_show(self.desired)}"
        if self.desired is None:
            return f"- {self.path}: {_show(self.live)}"
        return f"~ {self.path}: {_show(self.live)} -> {_show(self.desired)}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "desired": self.desired, "live": self.live}


def _show(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _drop_defaults(block: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    for key, value in defaults.items():
        if key in block and block[key] == value and type(block[key]) is type(value):
            del block[key]


def _normalize_cluster(cluster: Any) -> None:
    if not isinstance(cluster, dict):
        return
    for key in CLOUD_ATTRIBUTES:
        cluster.pop(key, None)
    _drop_defaults(cluster, CLUSTER_DEFAULTS)


def _normalize_task(task: dict[str, Any]) -> None:
    _drop_defaults(task, TASK_DEFAULTS)
    for block in NOTIFICATION_BLOCKS:
        if not prune_empty(task.get(block, {})):
            task.pop(block, None)
    for block in SOURCE_BLOCKS:
        if isinstance(task.get(block), dict) and task[block].get("source") == "WORKSPACE":
            del task[block]["source"]
    sql_file = (task.get("sql_task") or {}).get("file")
    if isinstance(sql_file, dict) and sql_file.get("source") == "WORKSPACE":
        del sql_file["source"]
    _normalize_cluster(task.get("new_cluster"))
    inner = (task.get("for_each_task") or {}).get("task")
    if isinstance(inner, dict):
        _normalize_task(inner)


def normalize_for_compare(
    settings: Mapping[str, Any], *, desired_has_run_as: bool, explicit_pause: bool
) -> dict[str, Any]:
    """``settings`` without anything the service fills in by itself, in canonical order.

    ``run_as`` is dropped unless the desired settings set one (a reset without it keeps the old
    one); ``pause_status`` is dropped unless the metadata set it (the live one then belongs to the
    user or to the tool's prune).
    """
    result = canonical_settings(settings, explicit_pause=explicit_pause)
    _drop_defaults(result, JOB_DEFAULTS)
    for block in NOTIFICATION_BLOCKS:
        if not prune_empty(result.get(block, {})):
            result.pop(block, None)
    if not desired_has_run_as:
        result.pop("run_as", None)
    if isinstance(result.get("queue"), dict) and not result["queue"].get("enabled"):
        del result["queue"]
    table_update = (result.get("trigger") or {}).get("table_update")
    if isinstance(table_update, dict):  # not returned by jobs/get (the CLI's test server drops it)
        table_update.pop("condition", None)
    for task in result.get("tasks", []):
        if isinstance(task, dict):
            _normalize_task(task)
    for cluster in result.get("job_clusters", []):
        if isinstance(cluster, dict):
            _normalize_cluster(cluster.get("new_cluster"))
    continuous = result.get("continuous")
    result = prune_empty(result)
    if continuous is not None:  # ``continuous: {}`` means "run continuously": keep it
        result["continuous"] = prune_empty(continuous)
    return result


def diff_settings(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[FieldChange]:
    """Field-level differences, with paths such as ``tasks[load].notebook_task.notebook_path``."""
    changes: list[FieldChange] = []
    _diff("", desired, live, changes)
    return changes


_ABSENT = object()


def _keyed(items: list[Any], key: str) -> dict[str, Any] | None:
    if not all(isinstance(item, dict) and key in item for item in items):
        return None
    mapped = {str(item[key]): item for item in items}
    return mapped if len(mapped) == len(items) else None


def _diff(path: str, desired: Any, live: Any, out: list[FieldChange]) -> None:
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        for key in sorted(set(desired) | set(live), key=str):
            _diff(
                f"{path}.{key}" if path else str(key), desired.get(key, _ABSENT), live.get(key, _ABSENT), out
            )
        return
    list_key = KEYED_LISTS.get(path.rsplit(".", 1)[-1].split("[", 1)[0])
    if list_key and isinstance(desired, list) and isinstance(live, list):
        wanted, actual = _keyed(desired, list_key), _keyed(live, list_key)
        if wanted is not None and actual is not None:
            for key in sorted(set(wanted) | set(actual)):
                _diff(f"{path}[{key}]", wanted.get(key, _ABSENT), actual.get(key, _ABSENT), out)
            return
    if desired == live and type(desired) is type(live):
        return
    out.append(FieldChange(path, None if desired is _ABSENT else desired, None if live is _ABSENT else live))
