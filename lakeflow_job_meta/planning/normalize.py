"""Compare desired settings with what ``jobs/get`` returns, without false drift.

The service fills in values nobody sent (empty notification blocks, ``timeout_seconds: 0``,
``run_if: ALL_SUCCESS``, ``source: WORKSPACE``, cluster attributes a policy or the backend
computes ...). The rule, taken from the Databricks CLI's own lists (``bundle/configsync/defaults.go``
``serverSideDefaults``; ``bundle/direct/dresources/resources.yml`` ``backend_defaults`` and
``ignore_remote_changes``, see docs/API_FACTS.md): a server-filled field that is present **only
on the live side** is not drift; a field the metadata **sets** is compared, so a UI edit of a
user-set ``node_type_id`` or ``aws_attributes`` is drift. Only the desired side decides what the
user set, so the comparison is asymmetric: :func:`compare_settings`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lakeflow_job_meta.planning.canonical import KEYED_JOB_LISTS, canonical_settings
from lakeflow_job_meta.planning.compiler import prune_empty


class _Any:
    """Marker: any live-only value of the field is the backend's, whatever it is."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()
_TASK_PREFIXES = ("tasks[*]", "tasks[*].for_each_task.task")
_CLUSTER_PREFIXES = (*(f"{p}.new_cluster" for p in _TASK_PREFIXES), "job_clusters[*].new_cluster")
# Cluster fields the backend, a cluster policy or an instance pool fills when the user omits them.
_CLUSTER_BACKEND_FIELDS = (
    "aws_attributes",
    "azure_attributes",
    "gcp_attributes",
    "data_security_mode",
    "single_user_name",
    "enable_elastic_disk",
    "enable_local_disk_encryption",
    "node_type_id",
    "driver_node_type_id",
    "driver_instance_pool_id",
    "custom_tags",
    "cluster_log_conf",
)
# Task fields the backend fills: path below the task -> the value(s) it fills, or ANY.
_TASK_DEFAULTS: dict[str, Any] = {
    "run_if": ("ALL_SUCCESS",),
    "disabled": (False,),
    "timeout_seconds": (0,),
    "email_notifications.no_alert_for_skipped_runs": (False,),
    "pipeline_task.full_refresh": (False,),
    "notebook_task.source": ANY,
    "spark_python_task.source": ANY,
    "sql_task.file.source": ANY,
    "dbt_task.source": ANY,
    # Not in the CLI's lists of backend-filled fields; the SDK's DbtTask.schema docstring says an
    # unset schema means "default", so a live-only "default" is the same job (docs/API_FACTS.md).
    "dbt_task.schema": ("default",),
}
# Path pattern (list elements as ``[*]``) -> values the service fills when the field is absent
# from the request (a tuple), or ANY. A live-only value that matches is not drift. (``format``, also
# a backend default, never reaches the comparison: it is a volatile field, see canonical.py.)
SERVER_DEFAULTS: dict[str, Any] = {
    "timeout_seconds": (0,),
    "max_concurrent_runs": (1,),
    "performance_target": ("PERFORMANCE_OPTIMIZED",),
    "email_notifications.no_alert_for_skipped_runs": (False,),
    # Only where the desired side has none (the bundle target): the workspace target always
    # sends run_as, which is then compared like any field.
    "run_as": ANY,
    **{f"{task}.{field}": value for task in _TASK_PREFIXES for field, value in _TASK_DEFAULTS.items()},
    **{f"{cluster}.{field}": ANY for cluster in _CLUSTER_PREFIXES for field in _CLUSTER_BACKEND_FIELDS},
    # Inside a user-set cloud attributes block the backend still fills the other keys (zone_id ...).
    **{
        f"{cluster}.{attributes}.*": ANY
        for cluster in _CLUSTER_PREFIXES
        for attributes in ("aws_attributes", "azure_attributes", "gcp_attributes")
    },
}
# Fields the service accepts but never returns: a desired-only value is not drift.
NOT_RETURNED: frozenset[str] = frozenset(f"{c}.apply_policy_default_values" for c in _CLUSTER_PREFIXES)
WEBHOOK_EVENTS: tuple[str, ...] = (
    "on_start",
    "on_success",
    "on_failure",
    "on_duration_warning_threshold_exceeded",
    "on_streaming_backlog_exceeded",
)
# Lists whose elements are identified by a key: diff paths name the key, and order is ignored.
# Webhook destinations are keyed by ``id``; email lists (plain strings) stay positional.
KEYED_LISTS: dict[str, str] = {
    **KEYED_JOB_LISTS,
    "depends_on": "task_key",
    **dict.fromkeys(WEBHOOK_EVENTS, "id"),
}
_LIST_KEY = re.compile(r"\[[^\]]*\]")


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


def normalize_for_compare(settings: Mapping[str, Any], *, explicit_pause: bool) -> dict[str, Any]:
    """``settings`` in canonical order, with empty blocks dropped and ``queue`` spelled out.

    ``pause_status`` is dropped unless the metadata set it (the live one then belongs to the user
    or to the tool's prune). A missing ``queue`` means enabled (Jobs API 2.2 default); a ``queue``
    without ``enabled`` means disabled (the JSON default of a boolean).
    """
    result = canonical_settings(settings, explicit_pause=explicit_pause)
    queue = result.get("queue")
    if queue is None:
        result["queue"] = {"enabled": True}
    elif isinstance(queue, dict):
        result["queue"] = {**queue, "enabled": bool(queue.get("enabled", False))}
    continuous = result.get("continuous")
    result = prune_empty(result)
    if continuous is not None:  # ``continuous: {}`` means "run continuously": keep it
        result["continuous"] = prune_empty(continuous)
    return result


def compare_settings(
    desired: Mapping[str, Any], live: Mapping[str, Any], *, explicit_pause: bool
) -> list[FieldChange]:
    """Drift of ``live`` against ``desired``: what differs, minus what only the service filled in."""
    return diff_settings(
        normalize_for_compare(desired, explicit_pause=explicit_pause),
        normalize_for_compare(live, explicit_pause=explicit_pause),
    )


def _pattern(path: str) -> str:
    return _LIST_KEY.sub("[*]", path)


def server_filled(path: str, value: Any) -> bool:
    """Whether a value present only live at ``path`` is one the service fills in by itself.

    A block is server-filled when every field in it is (``email_notifications:
    {no_alert_for_skipped_runs: false}``); anything else present only live is drift.
    """
    pattern = _pattern(path)
    rule = SERVER_DEFAULTS.get(pattern, SERVER_DEFAULTS.get(pattern.rsplit(".", 1)[0] + ".*"))
    if rule is ANY:
        return True
    if isinstance(rule, tuple):
        return any(value == v and type(value) is type(v) for v in rule)
    if isinstance(value, Mapping) and value:
        return all(server_filled(f"{path}.{key}", item) for key, item in value.items())
    return False


def diff_settings(
    desired: Mapping[str, Any], live: Mapping[str, Any], *, server_defaults: bool = True
) -> list[FieldChange]:
    """Field-level differences, with paths such as ``tasks[load].notebook_task.notebook_path``.

    ``server_defaults=False`` compares two documents the tool wrote itself (a bundle's job file
    on disk against its new rendering): nothing there was filled by a service, so a field the
    metadata dropped is shown even when its old value equals a server default."""
    changes: list[FieldChange] = []
    _diff("", desired, live, changes, server_defaults)
    return changes


_ABSENT = object()


def _keyed(items: list[Any], key: str) -> dict[str, Any] | None:
    if not all(isinstance(item, dict) and key in item for item in items):
        return None
    mapped = {str(item[key]): item for item in items}
    return mapped if len(mapped) == len(items) else None


def _upstream_keys(path: str, desired: Any, live: Any) -> tuple[list[str], list[str]] | None:
    """A task's ``depends_on`` as two sorted lists of task keys, when both sides name upstream
    tasks only (no ``outcome``): one line ``depends_on: ["a"] -> ["b"]`` reads better than an
    added and a removed entry. None: compare it as any keyed list."""
    if not path.endswith(".depends_on"):
        return None
    sides = []
    for value in (desired, live):
        items = [] if value is _ABSENT or value is None else value
        if not isinstance(items, list) or not all(
            isinstance(item, Mapping) and set(item) == {"task_key"} for item in items
        ):
            return None
        sides.append(sorted(str(item["task_key"]) for item in items))
    return sides[0], sides[1]


def _diff(path: str, desired: Any, live: Any, out: list[FieldChange], server_defaults: bool = True) -> None:
    if server_defaults and desired is _ABSENT and server_filled(path, live):
        return
    if server_defaults and live is _ABSENT and _pattern(path) in NOT_RETURNED:
        return
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        for key in sorted(set(desired) | set(live), key=str):
            _diff(
                f"{path}.{key}" if path else str(key),
                desired.get(key, _ABSENT),
                live.get(key, _ABSENT),
                out,
                server_defaults,
            )
        return
    upstream = _upstream_keys(path, desired, live)
    if upstream is not None:
        wanted_keys, actual_keys = upstream
        if wanted_keys != actual_keys:
            out.append(FieldChange(path, wanted_keys, actual_keys))
        return
    list_key = KEYED_LISTS.get(path.rsplit(".", 1)[-1].split("[", 1)[0])
    if list_key and isinstance(desired, list) and isinstance(live, list):
        wanted, actual = _keyed(desired, list_key), _keyed(live, list_key)
        if wanted is not None and actual is not None:
            for key in sorted(set(wanted) | set(actual)):
                _diff(
                    f"{path}[{key}]", wanted.get(key, _ABSENT), actual.get(key, _ABSENT), out, server_defaults
                )
            return
    if desired == live and type(desired) is type(live):
        return
    out.append(FieldChange(path, None if desired is _ABSENT else desired, None if live is _ABSENT else live))
