"""Turn a ``source_id`` into a Jobs ``task_key``.

The Jobs API allows ``[A-Za-z0-9_-]`` and at most 100 characters in a task key. Other characters
become ``_``; an over-long key keeps its first characters plus a short hash of the *whole*
``source_id``, so two long ids sharing a prefix stay distinct and the key never changes between
runs (a changed key would make the Jobs service see a different task). Keys that collide after
replacement (``a.b`` and ``a_b``) are reported by validation, not silently disambiguated.
"""

from __future__ import annotations

import hashlib
import re

MAX_TASK_KEY_LENGTH = 100
_HASH_LENGTH = 8
_INVALID = re.compile(r"[^A-Za-z0-9_-]")


def sanitize_task_key(source_id: str) -> str:
    """A valid, deterministic task key for ``source_id``."""
    key = _INVALID.sub("_", source_id) or "_"
    if len(key) <= MAX_TASK_KEY_LENGTH:
        return key
    digest = hashlib.sha256(source_id.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LENGTH]
    return f"{key[: MAX_TASK_KEY_LENGTH - _HASH_LENGTH - 1]}_{digest}"
