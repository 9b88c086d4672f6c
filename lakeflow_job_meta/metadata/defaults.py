"""A file's ``defaults:`` block, merged under every module of the file.

Shared settings (tags, notifications, timeouts, retries ...) are written once per file instead
of once per module. The merge happens before the schema and semantic checks and before the rows
are stored, so every later step (validation, the modules table, ``validate --show``, ``plan``)
sees each module fully resolved and nothing downstream knows defaults exist. Mappings merge key
by key (a module's ``tags`` add to the defaults' tags); any other value of the module's own
replaces the default whole (a list is never concatenated: order and duplicates would be
guesses).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

# Key of ``defaults`` whose settings go under every task (``transformation_config``).
TASKS_KEY = "tasks"
# Task types that run nothing retries or timeouts could apply to.
_NO_TASK_DEFAULTS = frozenset({"condition"})


def merge_under(default: Any, own: Any) -> Any:
    """``own`` with ``default`` filled in underneath: mappings merge recursively, anything else
    the module set wins whole."""
    if isinstance(default, Mapping) and isinstance(own, Mapping):
        merged = {key: copy.deepcopy(value) for key, value in default.items()}
        for key, value in own.items():
            merged[key] = merge_under(default[key], value) if key in default else value
        return merged
    return own


def with_defaults(modules: Any, defaults: Mapping[str, Any] | None) -> Any:
    """The file's module entries with ``defaults`` merged under each (job settings under the
    module, ``tasks`` settings under every source's ``transformation_config``). Entries of the
    wrong shape are left for the schema to report."""
    if not defaults or not isinstance(modules, list):
        return modules
    job_defaults = {key: value for key, value in defaults.items() if key != TASKS_KEY}
    task_defaults = defaults.get(TASKS_KEY) or {}
    result = []
    for entry in modules:
        if not isinstance(entry, Mapping):
            result.append(entry)
            continue
        merged = merge_under(job_defaults, entry)
        sources = merged.get("sources")
        if task_defaults and isinstance(sources, list):
            merged["sources"] = [_with_task_defaults(source, task_defaults) for source in sources]
        result.append(merged)
    return result


def _with_task_defaults(source: Any, task_defaults: Mapping[str, Any]) -> Any:
    config = source.get("transformation_config") if isinstance(source, Mapping) else None
    if not isinstance(config, Mapping) or config.get("task_type") in _NO_TASK_DEFAULTS:
        return source
    return {**source, "transformation_config": merge_under(task_defaults, config)}
