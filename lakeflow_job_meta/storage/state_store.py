"""``StateStore``: the one reader and writer of small JSON documents in the state table.

Each document is one row keyed ``(scope, key)``; the scope is the control table's id. The keys
are named here, so no caller scans the table for a string of its own. (The writer lease is also a
row of this table, but it is written with compare-and-set by :mod:`lakeflow_job_meta.engine.lease`.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from lakeflow_job_meta.clock import utc_datetime
from lakeflow_job_meta.storage.base import Table
from lakeflow_job_meta.storage.rows import StateRow
from lakeflow_job_meta.storage.tables import LEASE_KEY
from lakeflow_job_meta.vocabulary import StrEnum


class StateKey(StrEnum):
    PROGRESS = "progress"
    """The monitor's processed Delta versions, applied version and retries."""
    VOLUME_SNAPSHOT = "volume_snapshot"
    """What the volume scanner last acknowledged, so a restart does not reload every file."""
    LEASE = LEASE_KEY
    """The writer lease (written with compare-and-set by the lease; seeded with the table)."""
    REJECTED_FILES = "rejected_files"
    """Volume files the monitor currently rejects, with their issues (for ``status``)."""
    LOADED_ENVIRONMENTS = "loaded_environments"
    """The ``--env``/``--var`` the YAML rows were resolved with, and what their files declare."""
    PENDING_MANUAL = "pending_manual"
    """Held changes of ``sync: manual`` modules, per tracking key and module (for ``status``)."""


ENVIRONMENT_KEY_PREFIX = "environment:"


BUNDLE_MANIFEST_KEY_PREFIX = "bundle_manifest:"


def bundle_manifest_key(directory: str) -> str:
    """Where the hashes of a bundle folder's files as written are kept (one per absolute folder)."""
    return f"{BUNDLE_MANIFEST_KEY_PREFIX}{directory}"


def environment_key(name: str) -> str:
    """Where a loaded environment's declared ``mode`` is kept (plan and apply read no YAML)."""
    return f"{ENVIRONMENT_KEY_PREFIX}{name}"


class StateStore:
    def __init__(self, table: Table, scope: str, now: Callable[[], float]):
        self.table = table
        self.scope = scope
        self.now = now

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The documents of ``keys`` that exist (one table read); an unparsable one is None."""
        wanted = set(keys)
        found: dict[str, Any] = {}
        for row in self.table.read_all():
            if row.get("scope") == self.scope and row.get("key") in wanted:
                try:
                    found[row["key"]] = json.loads(row.get("value") or "null")
                except ValueError:
                    found[row["key"]] = None
        return found

    def get(self, key: str) -> Any:
        return self.get_many([key]).get(key)

    def put(self, key: str, value: Any) -> None:
        row = StateRow(
            scope=self.scope,
            key=key,
            value=json.dumps(value, sort_keys=True),
            updated_at=utc_datetime(self.now()),
        )
        self.table.merge([row.as_row()], [])
