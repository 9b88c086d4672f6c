"""Canonical form of job settings and the spec hash stored per job.

The hash decides whether a job needs an update without calling the API, so it must depend only on
what the metadata means: list order that the service ignores (tasks, ``depends_on``, clusters,
environments, parameters) is sorted away, and so are fields the tool does not own. Bump
``HASH_VERSION`` only when the canonical form itself changes; a tool upgrade that compiles the same
settings keeps every hash, so it does not rewrite every job.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import Any

from lakeflow_job_meta.metadata.models import canonical_json

HASH_VERSION = 1

# Fields that the service or a deployment tool sets on a job and the metadata never does.
VOLATILE_FIELDS: tuple[str, ...] = ("deployment", "format")
PAUSABLE_BLOCKS: tuple[str, ...] = ("schedule", "trigger", "continuous")
# Job-level lists whose order carries no meaning, with the key that identifies an element.
KEYED_JOB_LISTS: dict[str, str] = {
    "tasks": "task_key",
    "job_clusters": "job_cluster_key",
    "environments": "environment_key",
    "parameters": "name",
}


def scalar_text(value: Any) -> str:
    """A metadata value as the string the Jobs API expects for parameters and tags.

    YAML gives ``true``/``5``; the API takes only strings, and ``str(True)`` would be ``True``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    return canonical_json(value)


def sort_keyed(items: list[Any], key: str) -> list[Any]:
    """Sort dicts by ``key`` (missing keys first, then by canonical JSON so the order is total)."""
    return sorted(
        items,
        key=lambda item: (str(item.get(key, "")) if isinstance(item, dict) else "", canonical_json(item)),
    )


def _canonical_task(task: dict[str, Any]) -> None:
    if isinstance(task.get("depends_on"), list):
        task["depends_on"] = sort_keyed(task["depends_on"], "task_key")
    for_each = task.get("for_each_task")
    if isinstance(for_each, dict) and isinstance(for_each.get("task"), dict):
        _canonical_task(for_each["task"])


def strip_pause_status(settings: dict[str, Any]) -> None:
    """Remove ``pause_status`` from schedule/trigger/continuous, in place."""
    for block in PAUSABLE_BLOCKS:
        if isinstance(settings.get(block), dict):
            settings[block].pop("pause_status", None)


def canonical_settings(settings: Mapping[str, Any], *, explicit_pause: bool = False) -> dict[str, Any]:
    """A copy of ``settings`` in canonical order without volatile fields.

    ``pause_status`` stays only when ``explicit_pause``: otherwise the live pause status belongs to
    the user (or to the tool's prune) and must not make the hash move.
    """
    result = copy.deepcopy(dict(settings))
    for name in VOLATILE_FIELDS:
        result.pop(name, None)
    if not explicit_pause:
        strip_pause_status(result)
    for name, key in KEYED_JOB_LISTS.items():
        if isinstance(result.get(name), list):
            result[name] = sort_keyed(result[name], key)
    for task in result.get("tasks") or []:
        if isinstance(task, dict):
            _canonical_task(task)
    if isinstance(result.get("tags"), dict):
        result["tags"] = dict(sorted(result["tags"].items()))
    return result


def spec_hash(
    settings: Mapping[str, Any],
    *,
    explicit_pause: bool,
    permissions: list[dict[str, Any]] | None = None,
    run_job_refs: Mapping[str, str] | None = None,
) -> str:
    """``v1:<sha256>`` of the canonical settings.

    Permissions and run_job targets are not part of the settings (run_job tasks hold a placeholder
    job id) but changing them must still change the hash; they join the hashed payload only when
    present, so modules without them hash their settings alone.
    """
    payload: dict[str, Any] = {"settings": canonical_settings(settings, explicit_pause=explicit_pause)}
    if permissions:
        payload["permissions"] = sorted(permissions, key=canonical_json)
    if run_job_refs:
        payload["run_job_refs"] = dict(sorted(run_job_refs.items()))
    digest = hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
    return f"v{HASH_VERSION}:{digest}"
