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
from lakeflow_job_meta.engine.status import iso, read_history, read_status
from lakeflow_job_meta.errors import LakeflowJobMetaError
from lakeflow_job_meta.planning.graph import TaskGraph
from lakeflow_job_meta.planning.graph_svg import render_svg
from lakeflow_job_meta.planning.plan import ORPHANED_STATUS
from lakeflow_job_meta.storage.tables import ToolTables

CACHE_SECONDS = 5.0
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
        or any(t.get("last_outcome") == "error" or t.get("last_error") for t in targets)
    ):
        return "error"
    if any(t.get("last_outcome") == "held" for t in targets):
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
        self.tables = tables
        self.control_table = control_table
        self.clock = clock
        self._desired = desired
        self._graph = graph
        self._lock = threading.Lock()
        self._cached: tuple[tuple[Any, ...], float, dict[str, Any]] | None = None

    def _versions(self) -> tuple[Any, ...]:
        runs = self.tables.runs.version() if self.tables.runs.exists() else None
        return (*(table.version() for table in self.tables.all()), runs)

    def status(self) -> dict[str, Any]:
        """``read_status`` with metadata issues and run health, cached while nothing changed."""
        versions = self._versions()
        now = self.clock.monotonic()
        with self._lock:
            cached = self._cached
            if cached is not None and cached[0] == versions and now - cached[1] < CACHE_SECONDS:
                return cached[2]
        runs = self.tables.runs.read_all() if versions[-1] is not None else []
        desired = self._desired() if self._desired is not None else None
        document = read_status(
            self.tables, self.control_table, desired=desired, runs=runs, now=self.clock.now()
        )
        document["runs_rows"] = runs
        for module in document["modules"]:
            module["rejections"] = rejections(module, document["rejected_files"])
        with self._lock:
            self._cached = (versions, now, document)
        return document

    # -- pages -------------------------------------------------------------------------------
    def overview(self, filters: Filters) -> dict[str, Any]:
        status = self.status()
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
            "graph": None
            if graph is None
            else {
                "job_name": graph.name,
                "tasks": [
                    {"task_key": n.task_key, "task_type": n.task_type, "run_if": n.run_if}
                    for n in graph.nodes
                ],
                "dependencies": [
                    {"upstream": e.upstream, "downstream": e.downstream, "outcome": e.outcome}
                    for e in graph.edges
                ],
            },
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
