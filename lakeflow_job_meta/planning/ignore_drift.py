"""``ignore_drift``: fields whose live value the UI owns.

The same overlay serves the comparison and the write, so the two can never disagree: the desired
settings take the live value of every ignored path (or lose the field when the live job has
none). Compared after the overlay, an ignored field never differs; sent after it, a reset made for
another reason keeps what the UI set.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

_MISSING = object()


def _get(settings: Mapping[str, Any], parts: list[str]) -> Any:
    value: Any = settings
    for part in parts:
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def with_live_values(
    desired: Mapping[str, Any], live: Mapping[str, Any] | None, paths: Iterable[str]
) -> dict[str, Any]:
    """``desired`` with each of ``paths`` (dotted, validated) set to its live value; a path the
    live job lacks is removed. Without live settings (not read) ``desired`` is returned as is."""
    result = copy.deepcopy(dict(desired))
    paths = list(paths)
    if live is None or not paths:
        return result
    for path in paths:
        parts = path.split(".")
        value = _get(live, parts)
        parent: Any = result
        for part in parts[:-1]:
            if not isinstance(parent.get(part), dict):
                if value is _MISSING:
                    parent = None
                    break
                parent[part] = {}
            parent = parent[part]
        if parent is None:
            continue
        if value is _MISSING:
            parent.pop(parts[-1], None)
        else:
            parent[parts[-1]] = copy.deepcopy(value)
    return result


def settings_digest(settings: Mapping[str, Any]) -> str:
    """SHA-256 of settings as canonical JSON: what ``apply --plan`` compares to see whether the
    live job moved since the plan was written."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
