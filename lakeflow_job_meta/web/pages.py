"""What each page of the status page shows, as JSON-able dicts: the HTML templates and the JSON
API render the same documents, so the two never disagree.

Reads go through :class:`~lakeflow_job_meta.web.fleet.Fleet`, which keeps every module's entry
and overview row in memory and brings them up to date by what moved in the tables (a request
reads the six Delta versions, about 1 ms; a change of one row costs milliseconds at 3,000
modules). The fleet is read once in the background when the source is built, so the server
answers at once and its first request waits only for what is left of that read. Nothing here
writes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lakeflow_job_meta.clock import Clock
from lakeflow_job_meta.engine.status import history_rows, iso
from lakeflow_job_meta.errors import LakeflowJobMetaError
from lakeflow_job_meta.planning.compiler import CompiledJob
from lakeflow_job_meta.planning.graph import TaskGraph, task_graph
from lakeflow_job_meta.planning.graph_svg import render_svg
from lakeflow_job_meta.planning.plan import ORPHANED_STATUS
from lakeflow_job_meta.storage.tables import ToolTables
from lakeflow_job_meta.vocabulary import Outcome
from lakeflow_job_meta.web.fleet import CACHE_SECONDS, Fleet, Validate
from lakeflow_job_meta.web.pending import LiveSettings, pending_changes

log = logging.getLogger(__name__)

# The states of the list first; "orphaned" (a job whose module left the metadata) and
# "inactive" (a module switched off) name modules the list has no word for.
SYNC_STATES = ("synced", "out of sync", "held", "manual pending", "error", "orphaned", "inactive")
MAX_ROWS = 100  # runs and history rows on a module page


def sync_state(module: Mapping[str, Any]) -> str:
    """One word for where a module's job stands against its metadata: ``error`` (its metadata,
    a rejected edit or the last apply failed), ``held`` (the blast-radius limit held its pause
    or delete back), ``manual pending`` (a ``sync: manual`` module with a change an apply would
    make: held by the monitor, or its metadata newer than its job), ``orphaned``, ``inactive``,
    ``out of sync`` (the metadata changed after the last apply, or it was never applied) and
    ``synced``."""
    targets = module.get("targets") or []
    if module.get("metadata_errors") or module.get("rejections") or any(_failed(t) for t in targets):
        return "error"
    if any(t.get("last_outcome") == Outcome.HELD for t in targets):
        return "held"
    if any(t.get("pending") for t in targets):
        return "manual pending"
    if module.get("orphaned") or any(t.get("status") == ORPHANED_STATUS for t in targets):
        return "orphaned"
    if not module.get("active"):
        return "inactive"
    changed = not targets or any(t.get("lag") for t in targets)
    if changed and module.get("sync_manual"):
        return "manual pending"
    return "out of sync" if changed else "synced"


def _failed(target: Mapping[str, Any]) -> bool:
    """The target's last apply failed (a held change's row carries why it was held, no failure)."""
    if target.get("last_outcome") == Outcome.HELD:
        return False
    return target.get("last_outcome") == Outcome.ERROR or bool(target.get("last_error"))


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
    """The tables behind the pages, read-only, mirrored by a :class:`Fleet`.

    ``validate`` turns rows into a DesiredState (the metadata's issues); ``compile_one`` compiles
    one module as ``graph`` does (its task graph and pending diff); ``live_settings`` reads a
    workspace job for the pending diff (None: the page reads no workspace)."""

    def __init__(
        self,
        tables: ToolTables,
        control_table: str,
        *,
        clock: Clock,
        validate: Validate | None = None,
        compile_one: Callable[[str], CompiledJob] | None = None,
        live_settings: LiveSettings | None = None,
    ):
        self.control_table = control_table
        self.clock = clock
        self.fleet = Fleet(tables, control_table, clock=clock, row_of=overview_row, validate=validate)
        self._compile_one = compile_one
        self._live_settings = live_settings
        self._overviews: dict[Filters, tuple[int, dict[str, Any]]] = {}
        self._all_rows: tuple[int, list[dict[str, Any]]] | None = None
        self._modules: dict[str, tuple[dict[str, Any], float, dict[str, Any]]] = {}
        self._warming: threading.Thread | None = None

    def warm(self) -> threading.Thread:
        """Read the fleet in a background thread (once): a request meanwhile waits for it."""
        if self._warming is None:
            self._warming = threading.Thread(target=self._warm, name="ljm-serve-warm", daemon=True)
            self._warming.start()
        return self._warming

    def _warm(self) -> None:
        try:
            self.fleet.refresh()
        except Exception as error:  # a request reads again and reports it
            log.warning("could not read %s in the background: %s", self.control_table, error)

    # -- pages -------------------------------------------------------------------------------
    def overview(self, filters: Filters) -> dict[str, Any]:
        """The overview page, memoised per filter while the fleet did not move (a page made
        again after a change reuses every unchanged module's row object)."""
        with self.fleet.lock:
            generation = self.fleet.refresh()
            memo = self._overviews.get(filters)
            if memo is not None and memo[0] == generation:
                return memo[1]
            page = self._overview(generation, filters)
            if len(self._overviews) > 64:
                self._overviews.clear()
            self._overviews[filters] = (generation, page)
            return page

    def _overview(self, generation: int, filters: Filters) -> dict[str, Any]:
        fleet = self.fleet
        if self._all_rows is None or self._all_rows[0] != generation:
            self._all_rows = (generation, [fleet.rows[name] for name in fleet.names])
        rows = self._all_rows[1]
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["sync"]] = counts.get(row["sync"], 0) + 1
        header = fleet.header
        return {
            "control_table": self.control_table,
            "control_version": header["control_version"],
            "lag_versions": header["lag_versions"],
            "monitor": header["monitor"],
            "last_good_cycle_at": header["last_good_cycle_at"],
            "rejected_files": len(header["rejected_files"]),
            "total": len(rows),
            "counts": counts,
            "unhealthy": sum(1 for row in rows if not row["healthy"]),
            "filters": {"q": filters.q, "sync": filters.sync, "health": filters.health},
            "modules": [row for row in rows if filters.keep(row)],
        }

    def module(self, name: str) -> dict[str, Any] | None:
        """A module's page, kept while its entry is the same object and for at most
        CACHE_SECONDS (the pending diff may read the live job)."""
        with self.fleet.lock:
            self.fleet.refresh()
            found = self.fleet.docs.get(name)
            if found is None:
                return None
            memo = self._modules.get(name)
            now = self.clock.monotonic()
            if memo is not None and memo[0] is found and now - memo[1] < CACHE_SECONDS:
                return memo[2]
            runs = sorted(
                self.fleet.runs.get(name, {}).values(), key=lambda r: int(r.get("run_id") or 0), reverse=True
            )[:MAX_ROWS]
            history = history_rows(self.fleet.history.get(name, {}).values(), limit=MAX_ROWS)
            tracking = {key: dict(rows) for key, rows in self.fleet.tracking.items()}
        compiled = _Compiled(self._compile_one)
        graph, graph_error = compiled.graph(name)
        page = {
            "control_table": self.control_table,
            "module": found,
            "overview": overview_row(found),
            "graph": None if graph is None else graph.as_dict(),
            "graph_svg": render_svg(graph) if graph is not None else None,
            "graph_error": graph_error,
            "pending": pending_changes(
                found,
                compile_one=compiled if self._compile_one is not None else None,
                job_ids=lambda target: {
                    module: int(rows[target]["job_id"])
                    for module, rows in tracking.items()
                    if target in rows and rows[target].get("job_id")
                },
                live_settings=self._live_settings,
            ),
            "runs": [_run_view(r) for r in runs],
            "history": history,
        }
        with self.fleet.lock:
            if len(self._modules) > 256:
                self._modules.clear()
            self._modules[name] = (found, now, page)
        return page

    def rejected(self) -> dict[str, Any]:
        with self.fleet.lock:
            self.fleet.refresh()
            return {
                "control_table": self.control_table,
                "rejected_files": self.fleet.header["rejected_files"],
            }

    def monitor(self) -> dict[str, Any]:
        with self.fleet.lock:
            self.fleet.refresh()
            header = self.fleet.header
            return {
                "control_table": self.control_table,
                "monitor": header["monitor"],
                "last_good_cycle_at": header["last_good_cycle_at"],
                "control_version": header["control_version"],
                "applied_control_version": header["applied_control_version"],
                "lag_versions": header["lag_versions"],
            }


class _Compiled:
    """``compile_one`` for one page: each module compiled at most once, errors kept."""

    def __init__(self, compile_one: Callable[[str], CompiledJob] | None):
        self._compile_one = compile_one
        self._done: dict[str, CompiledJob | LakeflowJobMetaError] = {}

    def __call__(self, name: str) -> CompiledJob:
        if name not in self._done:
            assert self._compile_one is not None
            try:
                self._done[name] = self._compile_one(name)
            except LakeflowJobMetaError as error:
                self._done[name] = error
        found = self._done[name]
        if isinstance(found, LakeflowJobMetaError):
            raise found
        return found

    def graph(self, name: str) -> tuple[TaskGraph | None, str | None]:
        if self._compile_one is None:
            return None, None
        try:
            job = self(name)
        except LakeflowJobMetaError as error:
            return None, str(error)
        return task_graph(job.job_name, job.settings, job.managed_files), None


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
