"""Schemas of the tool's five tables, the optional ``runs`` table, and :class:`ToolTables`.

Schema versions start at 2: version 1 is the older layout (no audit columns on the control and
modules tables, no ``managed_files`` on the jobs table) that migration is tested against. A
migration only ever adds nullable columns, so rows written by an older version survive and read
the new columns as None.
"""

from __future__ import annotations

from collections.abc import Callable

from lakeflow_job_meta.errors import TableNotFoundError
from lakeflow_job_meta.storage.base import Column, Table, TableSpec
from lakeflow_job_meta.storage.naming import TableReference, control_table_id

# Table properties every tool table carries.
SCHEMA_VERSION_PROPERTY = "lakeflow_job_meta.schema_version"
KIND_PROPERTY = "lakeflow_job_meta.kind"
CDF_PROPERTY = "delta.enableChangeDataFeed"

# The writer lease's row in the state table: ``(control_table_id, LEASE_KEY)``.
LEASE_KEY = "lease"

# Audit columns. On Databricks they carry SQL DEFAULTs so that a user's INSERT that names only the
# reference columns still fills them; locally the delta-rs adapter fills them on merge.
AUDIT: tuple[Column, ...] = (
    Column("created_at", "timestamp", default_sql="current_timestamp()"),
    Column("updated_at", "timestamp", default_sql="current_timestamp()"),
    Column("created_by", "string", default_sql="current_user()"),
    Column("updated_by", "string", default_sql="current_user()"),
    Column("source_file", "string", default_sql="NULL"),
)

CONTROL_SPEC = TableSpec(
    kind="control",
    columns=(
        Column("source_id", "string"),
        Column("module_name", "string"),
        Column("source_type", "string"),
        Column("execution_order", "int"),
        Column("source_config", "string"),
        Column("target_config", "string"),
        Column("transformation_config", "string"),
        Column("is_active", "boolean"),
        *AUDIT,
    ),
    key=("source_id",),
    schema_version=2,
    change_data_feed=True,
)

MODULES_SPEC = TableSpec(
    kind="modules",
    columns=(
        Column("module_name", "string"),
        Column("settings", "string"),  # JSON
        Column("is_active", "boolean"),
        *AUDIT,
    ),
    key=("module_name",),
    schema_version=2,
    change_data_feed=True,
)

JOBS_SPEC = TableSpec(
    kind="jobs",
    columns=(
        Column("target", "string"),
        Column("module_name", "string"),
        Column("job_id", "bigint"),
        Column("job_name", "string"),
        Column("spec_hash", "string"),
        Column("hash_version", "int"),
        Column("applied_version", "bigint"),
        Column("status", "string"),
        Column("last_error", "string"),
        Column("paused_by_tool", "boolean"),
        Column("managed_files", "string"),  # JSON map path -> sha256
        Column("updated_at", "timestamp"),
    ),
    key=("target", "module_name"),
    schema_version=2,
)

HISTORY_SPEC = TableSpec(
    kind="history",
    columns=(
        Column("run_id", "string"),
        Column("target", "string"),
        Column("module_name", "string"),
        Column("action", "string"),
        Column("job_id", "bigint"),
        Column("old_hash", "string"),
        Column("new_hash", "string"),
        Column("outcome", "string"),
        Column("error", "string"),
        Column("duration_ms", "bigint"),
        Column("started_at", "timestamp"),
        Column("writes", "int"),
    ),
    key=("run_id", "module_name", "action"),
    schema_version=2,
)

STATE_SPEC = TableSpec(
    kind="state",
    columns=(
        Column("scope", "string"),
        Column("key", "string"),
        Column("value", "string"),  # JSON
        Column("updated_at", "timestamp"),
    ),
    key=("scope", "key"),
    schema_version=2,
)

# The runs of the managed jobs as the monitor read them (``jobs/runs/list``), for run health.
# Kept apart from SPECS: a table made before run health existed is complete without it, so
# read-only commands never require it, and only the monitor (which records runs) creates it.
RUNS_SPEC = TableSpec(
    kind="runs",
    columns=(
        Column("run_id", "bigint"),
        Column("job_id", "bigint"),
        Column("module_name", "string"),
        Column("target", "string"),
        Column("trigger", "string"),
        Column("life_cycle_state", "string"),
        Column("result_state", "string"),
        Column("queued_seconds", "double"),
        Column("started_at", "timestamp"),
        Column("ended_at", "timestamp"),
        Column("duration_seconds", "double"),
        Column("error", "string"),
        Column("run_page_url", "string"),
        Column("updated_at", "timestamp"),
    ),
    key=("run_id",),
    schema_version=2,
)
RUNS_SUFFIX = "_runs"

# kind -> (spec, suffix appended to the control table's name; "" for the control table itself)
SPECS: dict[str, tuple[TableSpec, str]] = {
    "control": (CONTROL_SPEC, ""),
    "modules": (MODULES_SPEC, "_modules"),
    "jobs": (JOBS_SPEC, "_jobs"),
    "history": (HISTORY_SPEC, "_history"),
    "state": (STATE_SPEC, "_state"),
}

TableFactory = Callable[[TableReference, TableSpec], Table]


class ToolTables:
    """The control table and its four siblings, all on the same backend."""

    def __init__(self, control: TableReference, factory: TableFactory):
        self.reference = control
        tables = {
            kind: factory(control.sibling(suffix) if suffix else control, spec)
            for kind, (spec, suffix) in SPECS.items()
        }
        self.control: Table = tables["control"]
        self.modules: Table = tables["modules"]
        self.jobs: Table = tables["jobs"]
        self.history: Table = tables["history"]
        self.state: Table = tables["state"]
        self.runs: Table = factory(control.sibling(RUNS_SUFFIX), RUNS_SPEC)

    def all(self) -> tuple[Table, ...]:
        """The five tables every command needs (``runs`` is optional: see RUNS_SPEC)."""
        return (self.control, self.modules, self.jobs, self.history, self.state)

    def lease_seed(self) -> dict[str, str | None]:
        """The lease row the state table is created with (value NULL: free). Taking the lease is
        then always an UPDATE of this one existing row: on Databricks with row-level concurrency
        two insert-only MERGEs of the same key may both commit, two UPDATEs of one row may not."""
        return {"scope": control_table_id(self.reference), "key": LEASE_KEY, "value": None}

    def ensure_exists(self) -> None:
        """Create missing tables and migrate old ones (write commands call this first)."""
        for table in self.all():
            if table is self.state:
                table.create_or_migrate(seed=[self.lease_seed()])
            else:
                table.create_or_migrate()

    def exists(self) -> bool:
        return all(table.exists() for table in self.all())

    def require_exists(self) -> None:
        """For read-only commands: fail on the first missing table, by name, instead of creating."""
        for table in self.all():
            if not table.exists():
                raise TableNotFoundError(table.name)
