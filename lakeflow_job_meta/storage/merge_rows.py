"""Backend-neutral preparation of a MERGE: the rows both backends send in one commit.

Upserts become full rows of the spec (audit columns filled), deletes carry only the key, and
every row is tagged ``_op`` (``u`` or ``d``) so a single MERGE can do both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lakeflow_job_meta.errors import StorageError
from lakeflow_job_meta.storage.base import TableSpec

OP_COLUMN = "_op"
# Written on insert only: an update keeps who created the row and when.
INSERT_ONLY_AUDIT = ("created_at", "created_by")
TIMESTAMP_AUDIT = ("created_at", "updated_at")
ACTOR_AUDIT = ("created_by", "updated_by")


def key_of(spec: TableSpec, table: str, row: Mapping[str, Any]) -> tuple[Any, ...]:
    key = tuple(row.get(k) for k in spec.key)
    if any(part is None for part in key):
        raise StorageError(f"{table}: row without its key {spec.key}: {dict(row)}")
    return key


def fill_row(
    spec: TableSpec, table: str, row: Mapping[str, Any], now: datetime, actor: str
) -> dict[str, Any]:
    """A full row of the spec: unknown keys refused, absent columns None, audit filled."""
    unknown = set(row) - set(spec.column_names)
    if unknown:
        raise StorageError(f"{table}: unknown column(s) {', '.join(sorted(unknown))}")
    full = {name: row.get(name) for name in spec.column_names}
    for name in TIMESTAMP_AUDIT:
        if name in full and full[name] is None:
            full[name] = now
    for name in ACTOR_AUDIT:
        if name in full and full[name] is None:
            full[name] = actor
    return full


def update_columns(spec: TableSpec, upserts: Sequence[Mapping[str, Any]]) -> list[str]:
    """Columns an update sets: those the caller supplied (others keep their stored value), plus
    updated_*; never the key or created_*."""
    supplied = {name for row in upserts for name in row}
    supplied.update(n for n in ("updated_at", "updated_by") if n in spec.column_names)
    return [
        n for n in spec.column_names if n in supplied and n not in spec.key and n not in INSERT_ONLY_AUDIT
    ]


def merge_source_rows(
    spec: TableSpec,
    table: str,
    upserts: Sequence[Mapping[str, Any]],
    deletes: Sequence[Mapping[str, Any]],
    now: datetime,
    actor: str,
) -> list[dict[str, Any]]:
    """The MERGE source: one ``_op``-tagged row per key; a key twice in one merge is refused."""
    seen: set[tuple[Any, ...]] = set()
    rows: list[dict[str, Any]] = []
    for row, op in [(r, "u") for r in upserts] + [(r, "d") for r in deletes]:
        key = key_of(spec, table, row)
        if key in seen:
            raise StorageError(f"{table}: key {key} appears twice in one merge")
        seen.add(key)
        full = fill_row(spec, table, row, now, actor) if op == "u" else {k: row[k] for k in spec.key}
        full[OP_COLUMN] = op
        rows.append(full)
    return rows
