"""What each page of the status page shows, as JSON-able dicts: the HTML templates and the JSON
API render the same documents, so the two never disagree.

Reads go through :class:`StatusSource`, which caches the fleet document by the tables' Delta
versions (about 1 ms each to read) for a few seconds: at 3,000 modules a page is then a
filter and a render, not a scan of five tables. Nothing here writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lakeflow_job_meta.clock import Clock
from lakeflow_job_meta.engine.runs import health_of_rows, module_limits
from lakeflow_job_meta.engine.status import iso, read_history, read_state_header, read_status
from lakeflow_job_meta.errors import LakeflowJobMetaError
from lakeflow_job_meta.planning.graph import TaskGraph
from lakeflow_job_meta.planning.graph_svg import render_svg
from lakeflow_job_meta.planning.plan import ORPHANED_STATUS
from lakeflow_job_meta.storage.tables import ToolTables
from lakeflow_job_meta.vocabulary import Outcome

CACHE_SECONDS = 5.0
MODULES_MAX_AGE = 60.0
SYNC_STATES = ("synced", "out of sync", "held", "pending", "error", "orphaned", "inactive")
MAX_ROWS = 100  # runs and history rows on a module page


def sync_state(module: Mapping[str, Any]) -> str:
    """One word for where a module's job stands against its metadata."""
    targets = module.get("targets") or []
    if module.get("orphaned") or any(t.get("status") == ORPHANED_STATUS for t in targets):
        return "orphaned"
    if (
        module.get("metadata_errors")
        or module.get("rejections")
        or any(t.get("last_outcome") == Outcome.ERROR or t.get("last_error") for t in targets)
    ):
        return "error"
    if any(t.get("last_outcome") == Outcome.HELD for t in targets):
        return "held"
    if not module.get("active"):
        return "inactive"
    if not targets:
        return "pending"  # never applied: waits for the monitor or an apply
    if any(t.get("lag") for t in targets):
        return "out of sync"
    return "synced"


def rejections(module: Mapping[str, Any], rejected: Mapping[str, list[str]]) -> list[str]:
    """The issues (``file:line: ...``) of the rejected files a module's rows came from: the
    monitor keeps the module's last good rows, so the page says why its edit did not land."""
    found: list[str] = []
    for path, issues in sorted(rejected.items()):
        if any(f == path or f.endswith("/" + path) for f in module.get("files") or ()):
            found += [str(issue) for issue in issues]
    return found


def overview_row(module: Mapping[str, Any]) -> dict[str, Any]:
    targets = module.get("targets") or []
    first = targets[0] if targets else {}
    health = module.get("health") or {}
    run = first.get("latest_run") or {}
    return {
        "module": module["module"],
        "sync": sync_state(module),
        "job_id": first.get("job_id"),
        "url": first.get("url"),
        "file": first.get("file"),
        "drift": any(t.get("drift") for t in targets),
        "lag": any(t.get("lag") for t in targets),
        "applied_at": first.get("applied_at"),
        "applied_version": first.get("applied_version"),
        "last_run": run.get("state"),
        "last_run_at": run.get("start_time"),
        "health": health.get("state") or "no_runs",
        "healthy": health.get("healthy", True),
        "error": (module.get("metadata_errors") or module.get("rejections") or [None])[0]
        or first.get("last_error"),
    }


@dataclass(frozen=True)
class Filters:
    """The overview's query string: ``q`` (module name contains), ``sync``, ``health``."""

    q: str = ""
    sync: str = ""
    health: str = ""

    @staticmethod
    def from_query(query: Mapping[str, str]) -> Filters:
        return Filters(
            q=str(query.get("q", "")).strip()[:200],
            sync=str(query.get("sync", "")).strip(),
            health=str(query.get("health", "")).strip(),
        )

    def keep(self, row: Mapping[str, Any]) -> bool:
        if self.q and self.q.lower() not in row["module"].lower():
            return False
        if self.sync and row["sync"] != self.sync:
            return False
        if self.health == "unhealthy":
            return not row["healthy"]
        return not self.health or row["health"] == self.health


class _VersionedReads:
    """One table whose full read is kept until its Delta version moves: a monitor's lease
    renewal writes only the state table, so the page then re-reads one small table, not all."""

    def __init__(self, table: Any):
        self._table = table
        self._rows: tuple[int, list[dict[str, Any]]] | None = None
        self.name, self.spec = table.name, table.spec

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def read_all(self) -> list[dict[str, Any]]:
        version = self._table.version()
        if self._rows is None or self._rows[0] != version:
            self._rows = (version, self._table.read_all())
        return self._rows[1]


class _CachedTables:
    """The :class:`ToolTables` surface the pages use, each table read through _VersionedReads."""

    def __init__(self, tables: ToolTables):
        self._tables = tables
        self.reference = tables.reference
        self.control = _VersionedReads(tables.control)
        self.modules = _VersionedReads(tables.modules)
        self.jobs = _VersionedReads(tables.jobs)
        self.history = _VersionedReads(tables.history)
        self.state = _VersionedReads(tables.state)
        self.runs = _VersionedReads(tables.runs)

    def all(self) -> tuple[Any, ...]:
        return (self.control, self.modules, self.jobs, self.history, self.state)

    def require_exists(self) -> None:
        self._tables.require_exists()


STATE_INDEX = 4  # position of the state table in ToolTables.all()


def _only_state_moved(before: tuple[Any, ...], after: tuple[Any, ...]) -> bool:
    return before != after and all(
        b == a for i, (b, a) in enumerate(zip(before, after, strict=True)) if i != STATE_INDEX
    )


class StatusSource:
    """The tables behind the pages, read-only, with the fleet document cached by version."""

    def __init__(
        self,
        tables: ToolTables,
        control_table: str,
        *,
        clock: Clock,
        desired: Callable[[], Any] | None = None,
        graph: Callable[[str], TaskGraph] | None = None,
    ):
        self.tables: Any = _CachedTables(tables)
        self.control_table = control_table
        self.clock = clock
        self._desired = desired
        self._graph = graph
        self._lock = threading.Lock()
        self._cached: tuple[tuple[Any, ...], float, dict[str, Any]] | None = None
        # The metadata's issues depend on the control and modules tables only: validating every
        # row is most of a cold read, so a lease renewal or a cycle's write does not redo it.
        self._desired_cached: tuple[tuple[Any, ...], Any] | None = None
        self._health: tuple[tuple[Any, ...], float, Any] | None = None
        self._overviews: dict[Filters, tuple[dict[str, Any], dict[str, Any]]] = {}

    def _versions(self) -> tuple[Any, ...]:
        runs = self.tables.runs.version() if self.tables.runs.exists() else None
        return (*(table.version() for table in self.tables.all()), runs)

    def status(self) -> dict[str, Any]:
        """``read_status`` with metadata issues and run health, cached while nothing changed
        (up to CACHE_SECONDS). When only the state table moved (a lease renewal, a cycle's
        progress), modules younger than MODULES_MAX_AGE are kept and only the header (lease,
        lag, rejected files) is read again."""
        versions = self._versions()
        now = self.clock.monotonic()
        with self._lock:
            cached = self._cached
        if cached is not None and cached[0] == versions and now - cached[1] < CACHE_SECONDS:
            return cached[2]
        if (
            cached is not None
            and _only_state_moved(cached[0], versions)
            and now - cached[1] < MODULES_MAX_AGE
        ):
            header = read_state_header(self.tables, self.control_table, now=self.clock.now())
            document = {**cached[2], **header}
            document["modules"] = [
                {**m, "rejections": rejections(m, header["rejected_files"])} for m in cached[2]["modules"]
            ]
            born = cached[1]
        else:
            document, born = self._read(versions, now), now
        with self._lock:
            self._cached = (versions, born, document)
        return document

    def _read(self, versions: tuple[Any, ...], now: float) -> dict[str, Any]:
        runs = self.tables.runs.read_all() if versions[-1] is not None else []
        desired = None
        if self._desired is not None:
            if self._desired_cached is None or self._desired_cached[0] != versions[:2]:
                self._desired_cached = (versions[:2], self._desired())
            desired = self._desired_cached[1]
        document = read_status(
            self.tables,
            self.control_table,
            desired=desired,
            runs=runs,
            now=self.clock.now(),
            health=self._judged(versions, runs, now),
        )
        document["runs_rows"] = runs
        for module in document["modules"]:
            module["rejections"] = rejections(module, document["rejected_files"])
        return document

    def _judged(self, versions: tuple[Any, ...], runs: list[dict[str, Any]], now: float) -> Any:
        """Run health, judged again when the runs or modules tables move or after CACHE_SECONDS
        (an active run grows longer with time): not on every write of the state table."""
        key = (versions[1], versions[-1])
        if self._health is None or self._health[0] != key or now - self._health[1] >= CACHE_SECONDS:
            limits = module_limits(self.tables.modules.read_all())
            self._health = (key, now, health_of_rows(runs, now=self.clock.now(), limits=limits))
        return self._health[2]

    # -- pages -------------------------------------------------------------------------------
    def overview(self, filters: Filters) -> dict[str, Any]:
        """The overview page, memoised per filter while the fleet document is the same object
        (at 3,000 modules building the rows costs more than serving them)."""
        status = self.status()
        with self._lock:
            memo = self._overviews.get(filters)
            if memo is not None and memo[0] is status:
                return memo[1]
        page = self._overview(status, filters)
        with self._lock:
            if len(self._overviews) > 64:
                self._overviews.clear()
            self._overviews[filters] = (status, page)
        return page

    def _overview(self, status: dict[str, Any], filters: Filters) -> dict[str, Any]:
        rows = [overview_row(m) for m in status["modules"]]
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["sync"]] = counts.get(row["sync"], 0) + 1
        unhealthy = sum(1 for row in rows if not row["healthy"])
        return {
            "control_table": self.control_table,
            "control_version": status["control_version"],
            "lag_versions": status["lag_versions"],
            "monitor": status["monitor"],
            "last_good_cycle_at": status["last_good_cycle_at"],
            "rejected_files": len(status["rejected_files"]),
            "total": len(rows),
            "counts": counts,
            "unhealthy": unhealthy,
            "filters": {"q": filters.q, "sync": filters.sync, "health": filters.health},
            "modules": [row for row in rows if filters.keep(row)],
        }

    def module(self, name: str) -> dict[str, Any] | None:
        status = self.status()
        found = next((m for m in status["modules"] if m["module"] == name), None)
        if found is None:
            return None
        runs = sorted(
            (r for r in status["runs_rows"] if r.get("module_name") == name),
            key=lambda r: int(r.get("run_id") or 0),
            reverse=True,
        )[:MAX_ROWS]
        graph, graph_error = self._module_graph(name)
        return {
            "control_table": self.control_table,
            "module": found,
            "overview": overview_row(found),
            "graph": None if graph is None else graph.as_dict(),
            "graph_svg": render_svg(graph) if graph is not None else None,
            "graph_error": graph_error,
            "runs": [_run_view(r) for r in runs],
            "history": read_history(self.tables, module=name, limit=MAX_ROWS),
        }

    def _module_graph(self, name: str) -> tuple[TaskGraph | None, str | None]:
        if self._graph is None:
            return None, None
        try:
            return self._graph(name), None
        except LakeflowJobMetaError as error:
            return None, str(error)

    def rejected(self) -> dict[str, Any]:
        return {"control_table": self.control_table, "rejected_files": self.status()["rejected_files"]}

    def monitor(self) -> dict[str, Any]:
        status = self.status()
        return {
            "control_table": self.control_table,
            "monitor": status["monitor"],
            "last_good_cycle_at": status["last_good_cycle_at"],
            "control_version": status["control_version"],
            "applied_control_version": status["applied_control_version"],
            "lag_versions": status["lag_versions"],
        }


def _run_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row.get("run_id"),
        "job_id": row.get("job_id"),
        "trigger": row.get("trigger"),
        "state": row.get("result_state") or row.get("life_cycle_state"),
        "started_at": iso(row.get("started_at")),
        "ended_at": iso(row.get("ended_at")),
        "duration_seconds": row.get("duration_seconds"),
        "queued_seconds": row.get("queued_seconds"),
        "error": row.get("error"),
        "url": row.get("run_page_url"),
    }
