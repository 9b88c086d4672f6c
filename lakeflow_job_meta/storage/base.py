"""The one interface both storage backends implement.

A :class:`Table` is one Delta table. The monitor relies on ``version()`` being cheap (no scan),
and on ``changes_since()`` returning only changed rows (Change Data Feed). Every write is a single
Delta commit, so readers never see half of a load.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Values in rows are plain Python: str, int, bool, float, datetime (timezone-aware UTC) or None.


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    # SQL default on Databricks (e.g. "current_timestamp()"); locally the adapter fills it in.
    default_sql: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """Schema of one of the tool's tables, with its schema version and key columns."""

    kind: str  # control | modules | jobs | history | state
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    schema_version: int
    change_data_feed: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class Commit:
    """One entry of the Delta history (who changed the table, when, how)."""

    version: int
    timestamp: Any  # datetime, UTC
    operation: str
    user: str | None


# DESCRIBE HISTORY operations that change no row: auto-compaction, predictive optimization and
# VACUUM add such versions on their own. delta-rs names its optimize/vacuum commits the same way.
MAINTENANCE_OPERATIONS = frozenset(
    {"OPTIMIZE", "VACUUM START", "VACUUM END", "ANALYZE", "COMPUTE STATS", "REORG"}
)
# Ranges longer than this are not inspected commit by commit: reading the feed is cheaper.
MAINTENANCE_SCAN_LIMIT = 50


def maintenance_only(history: Callable[[int], Sequence[Commit]], since: int, until: int) -> bool:
    """True when every commit in ``(since, until]`` is a maintenance operation. False when one
    is not, when the range is empty, too long, or the history cannot show all of it (a commit
    may have landed after ``until``: we then read a little more, never assume)."""
    if until <= since or until - since > MAINTENANCE_SCAN_LIMIT:
        return False
    wanted = set(range(since + 1, until + 1))
    # Newest first; a few commits may have landed after ``until`` since it was read.
    commits = [c for c in history(until - since + 10) if c.version in wanted]
    if {c.version for c in commits} != wanted:
        return False
    return all(c.operation.upper() in MAINTENANCE_OPERATIONS for c in commits)


class Table(Protocol):
    """One Delta table, local (delta-rs) or on Databricks (Spark)."""

    name: str  # what users see in messages: a path or catalog.schema.table
    spec: TableSpec

    def exists(self) -> bool: ...

    def create_or_migrate(self, seed: Sequence[Mapping[str, Any]] = ()) -> None:
        """Create the table if missing; add missing columns (never drop) if its schema version is
        older than ``spec.schema_version``; record the new schema version. ``seed`` rows are
        written in the creating commit itself (so no two creators can both add them), or inserted
        into an existing table when their key is absent (tables created before seeding)."""

    def version(self) -> int:
        """Current Delta version, without scanning data. Raises TableNotFoundError."""

    def snapshot_id(self) -> str:
        """``<table id>@<version>``: names one state of the data for good. The version alone does
        not, since a table deleted and created again starts over at version 0; Delta's table id
        (a UUID chosen at creation) tells the two apart. Raises TableNotFoundError."""

    def read_all(self) -> list[dict[str, Any]]:
        """Every row, every column of the spec (missing columns read as None)."""

    def read_matching(self, column: str, values: Collection[str]) -> list[dict[str, Any]]:
        """The rows whose ``column`` (one of the spec's) is one of ``values``, as
        :meth:`read_all` shapes them: a one-module monitor cycle reads its module's rows only."""

    def changes_since(self, version: int) -> list[dict[str, Any]] | None:
        """Rows changed after ``version`` (exclusive) from the Change Data Feed, each with
        ``_change_type`` (insert | update_preimage | update_postimage | delete) and
        ``_commit_version``. None when CDF cannot answer (off, or history vacuumed): the caller
        then falls back to a full read."""

    def merge(
        self,
        upserts: Sequence[Mapping[str, Any]] = (),
        deletes: Sequence[Mapping[str, Any]] = (),
    ) -> bool:
        """Upsert and delete rows by ``spec.key`` in ONE commit. Does nothing (and returns False)
        when both are empty; otherwise returns True when rows were written (False when nothing
        matched, e.g. deleting absent keys: then no commit either). Missing audit columns are
        filled (created_at/created_by kept on update). An update sets only the columns the
        upsert rows supply (union over the batch; a row lacking one of them sets it to NULL);
        other columns keep their stored values. A key may appear only once per call."""

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows in one commit (history table). Absent audit columns are filled, as the
        SQL DEFAULTs on Databricks would."""

    def compare_and_set(self, row: Mapping[str, Any], expected: Mapping[str, Any] | None) -> bool:
        """Atomically write ``row`` only if the current row with the same key equals ``expected``
        on ``expected``'s columns (or is absent when ``expected`` is None). Returns False when it
        did not match or a concurrent commit won. Used for the writer lease. A concurrent commit
        that leaves the row equal to ``expected`` makes the backend re-read and retry, so False
        means the precondition really failed (or retries ran out under heavy contention)."""

    def history(self, limit: int = 20) -> list[Commit]:
        """Latest commits, newest first."""

    def maintenance_only(self, since: int, until: int) -> bool:
        """True when the versions in ``(since, until]`` are all maintenance commits (OPTIMIZE,
        VACUUM, ANALYZE, REORG) that change no row, so a reader of the data can skip them; see
        :func:`maintenance_only`."""
