"""The status page's picture of the fleet, kept in memory and brought up to date by what moved.

Each of the tool's tables is mirrored with the Delta version it was read at. A refresh reads the
six versions (about 1 ms together) and, for a table that moved, only what changed: the control
and modules tables through their change data feed (a full read when the feed cannot answer), the
others read whole and compared row by row (the tracking and state tables are small; the history
and runs tables move once per apply or runs read). Then only the modules whose rows changed are
worked on again: their metadata validated (with every module whose ``run_job`` tasks reach them,
the closure :func:`~lakeflow_job_meta.engine.metadata_manager.desired_state_from_rows` walks),
their status entry built (:func:`~lakeflow_job_meta.engine.status.module_status`, what
``status`` shows), their run health judged and their overview row made. At 3,000 modules the
first read and validation take about a second; a change of one row then costs milliseconds.

Run health depends on the time only through runs still going (an active run grows longer, a
queued one waits longer): those modules are judged again every ``CACHE_SECONDS``.

Nothing here writes. One lock: a refresh and the pages built from its result never interleave.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from types import SimpleNamespace
from typing import Any

from lakeflow_job_meta.clock import Clock
from lakeflow_job_meta.engine.runs import module_limits
from lakeflow_job_meta.engine.scoped_rows import run_job_modules
from lakeflow_job_meta.engine.status import (
    latest_history,
    latest_run_views,
    module_status,
    pending_by_module,
    read_state_header,
)
from lakeflow_job_meta.planning.health import ModuleHealth, RunFacts, module_health
from lakeflow_job_meta.storage.naming import control_table_id
from lakeflow_job_meta.storage.state_store import StateKey, StateStore

CACHE_SECONDS = 5.0
KINDS = ("control", "modules", "jobs", "history", "state", "runs")
FEED_KINDS = ("control", "modules")  # tables written with the change data feed on
Row = dict[str, Any]
# (control rows, modules-table rows, only these modules or None for all) -> a DesiredState
Validate = Callable[[list[Row], list[Row], set[str] | None], Any]


def rejections(module: Mapping[str, Any], rejected: Mapping[str, list[str]]) -> list[str]:
    """The issues (``file:line: ...``) of the rejected files a module's rows came from: the
    monitor keeps the module's last good rows, so the page says why its edit did not land."""
    found: list[str] = []
    for path, issues in sorted(rejected.items()):
        if any(f == path or f.endswith("/" + path) for f in module.get("files") or ()):
            found += [str(issue) for issue in issues]
    return found


class _Mirror:
    """One table's rows by key, as of ``version`` (None: not read yet, or the table is missing)."""

    def __init__(self, table: Any, *, feed: bool, optional: bool):
        self.table = table
        self.feed = feed
        self.optional = optional  # the runs table: made by the first monitor that reads runs
        self.version: int | None = None
        self.rows: dict[tuple[Any, ...], Row] = {}
        self.key = tuple(table.spec.key)
        self._feed_version = 0

    def current(self) -> int | None:
        if self.optional and not self.table.exists():
            return None
        return int(self.table.version())

    def poll(self, version: int | None) -> list[tuple[Row | None, Row | None]]:
        """Bring the rows to ``version``; returns the rows that changed as (before, after)."""
        if version == self.version:
            return []
        if version is None:  # the table is gone: so are its rows
            changes = self._replace({})
        else:
            fed = self._from_feed()
            if fed is None:
                changes = self._replace({self.key_of(row): row for row in self.table.read_all()})
            else:
                changes, version = fed, max(version, self._feed_version)
        self.version = version
        return changes

    def key_of(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row.get(k) for k in self.key)

    def _replace(self, fresh: dict[tuple[Any, ...], Row]) -> list[tuple[Row | None, Row | None]]:
        old = self.rows
        changes: list[tuple[Row | None, Row | None]] = [
            (old.get(k), row) for k, row in fresh.items() if old.get(k) != row
        ]
        changes += [(row, None) for k, row in old.items() if k not in fresh]
        self.rows = fresh
        return changes

    def _from_feed(self) -> list[tuple[Row | None, Row | None]] | None:
        """The change data feed since the mirrored version, applied; None when it cannot answer
        (no feed, history vacuumed, never read): the caller reads the table whole."""
        if not self.feed or self.version is None:
            return None
        feed = self.table.changes_since(self.version)
        if feed is None:
            return None
        self._feed_version = max((int(r["_commit_version"]) for r in feed), default=self.version)
        changes: list[tuple[Row | None, Row | None]] = []
        for change in feed:  # in commit order
            kind = change.get("_change_type")
            if kind == "update_preimage":
                continue
            row = {k: v for k, v in change.items() if k not in ("_change_type", "_commit_version")}
            key = self.key_of(row)
            before = self.rows.get(key)
            if kind == "delete":
                if before is not None:
                    del self.rows[key]
                    changes.append((before, None))
            elif before != row:
                self.rows[key] = row
                changes.append((before, row))
        return changes


def _module_of(*rows: Mapping[str, Any] | None) -> set[str]:
    return {str(row["module_name"]) for row in rows if row is not None and row.get("module_name")}


class Fleet:
    """Every module's ``status`` entry and overview row, refreshed incrementally.

    ``validate`` validates rows into a DesiredState (None: metadata issues are not shown);
    ``row_of`` makes a module's overview row from its entry."""

    def __init__(
        self,
        tables: Any,
        control_table: str,
        *,
        clock: Clock,
        row_of: Callable[[dict[str, Any]], dict[str, Any]],
        validate: Validate | None = None,
    ):
        self.tables = tables
        self.control_table = control_table
        self.clock = clock
        self._row_of = row_of
        self._validate = validate
        self.lock = threading.RLock()
        # Moves whenever anything shown changed: pages built from an older one are stale.
        self.generation = 0
        self._clear()

    def _clear(self) -> None:
        """Forget everything read: the next refresh reads the tables whole."""
        self._mirrors = {
            kind: _Mirror(getattr(self.tables, kind), feed=kind in FEED_KINDS, optional=kind == "runs")
            for kind in KINDS
        }
        self._versions: dict[str, int | None] | None = None
        # Per module: its rows, by the key of their table.
        self.control: dict[str, dict[tuple[Any, ...], Row]] = {}
        self.settings: dict[str, dict[tuple[Any, ...], Row]] = {}
        self.tracking: dict[str, dict[str, Row]] = {}
        self.history: dict[str, dict[tuple[Any, ...], Row]] = {}
        self.runs: dict[str, dict[int, Row]] = {}
        # Derived per module.
        self._latest: dict[str, dict[str, Mapping[str, Any]]] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self._deps: dict[str, set[str]] = {}
        self.issues: dict[str, list[str]] = {}
        self._limits: dict[str, float | None] = {}
        self._health: dict[str, ModuleHealth | None] = {}
        self._timed: set[str] = set()  # modules with a run still going: judged again with time
        self._judged_at = 0.0
        self._job_runs: dict[int, dict[int, Row]] = {}
        self._latest_runs: dict[int, dict[str, Any]] = {}
        self._job_modules: dict[int, set[str]] = {}
        self.docs: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.names: list[str] = []
        self._named: set[str] = set()
        self.header: dict[str, Any] = {}
        self._rejected: Mapping[str, list[str]] = {}

    # -- refresh -----------------------------------------------------------------------------
    def refresh(self) -> int:
        """Bring everything up to the tables' current versions; returns the generation."""
        with self.lock:
            try:
                return self._refresh()
            except BaseException:
                # A refresh cut short may have taken rows from a table without applying them:
                # start again from whole reads rather than show a fleet that missed a change.
                self._clear()
                raise

    def _refresh(self) -> int:
        if self._versions is None:
            self.tables.require_exists()
        versions = {kind: mirror.current() for kind, mirror in self._mirrors.items()}
        now = self.clock.now()
        timed = bool(self._timed) and self.clock.monotonic() - self._judged_at >= CACHE_SECONDS
        if versions == self._versions and not timed:
            return self.generation
        first = self._versions is None
        moved = {k for k, v in versions.items() if self._versions is None or self._versions[k] != v}
        dirty: set[str] = set()
        health: set[str] = set(self._timed) if timed else set()
        metadata = self._poll_metadata(versions, moved, health)
        dirty |= self._revalidate(metadata, everything=first)
        if "jobs" in moved:
            dirty |= self._poll_tracking(versions["jobs"])
        if "history" in moved:
            dirty |= self._poll_history(versions["history"])
        if "runs" in moved:
            dirty |= self._poll_runs(versions["runs"], health)
        header_moved = bool(moved & {"state", "control"})
        if header_moved:
            dirty |= self._read_state(versions["state"], versions["control"], now)
        if health:
            self._judged_at = self.clock.monotonic()
            dirty |= self._judge(health, now)
        if first:
            dirty = set(self.control) | set(self.settings) | set(self.tracking) | set(self._latest)
        self._versions = versions
        if dirty or header_moved:
            self._rebuild(dirty)
            self.generation += 1
        return self.generation

    def _poll_metadata(
        self, versions: Mapping[str, int | None], moved: set[str], health: set[str]
    ) -> set[str]:
        touched: set[str] = set()
        for kind, grouped in (("control", self.control), ("modules", self.settings)):
            if kind not in moved:
                continue
            mirror = self._mirrors[kind]
            for before, after in mirror.poll(versions[kind]):
                for row in (before, after):
                    if row is not None and row.get("module_name"):
                        name = str(row["module_name"])
                        touched.add(name)
                        grouped.setdefault(name, {}).pop(mirror.key_of(row), None)
                if after is not None and after.get("module_name"):
                    grouped[str(after["module_name"])][mirror.key_of(after)] = after
            for name in list(touched):
                if not grouped.get(name):
                    grouped.pop(name, None)
        for name in touched:
            self._deps[name] = set().union(*(run_job_modules(r) for r in self.control.get(name, {}).values()))
            # Health is judged for the modules with runs or a row in the modules table.
            present, limit = (
                name in self.settings,
                module_limits(self.settings.get(name, {}).values()).get(name),
            )
            if present != (name in self._limits) or (present and limit != self._limits[name]):
                health.add(name)
            if present:
                self._limits[name] = limit
            else:
                self._limits.pop(name, None)
        return touched

    def _revalidate(self, touched: set[str], *, everything: bool) -> set[str]:
        """Validate the modules whose rows changed and every module whose ``run_job`` tasks
        reach them (their validity depends on it); returns those modules."""
        if not touched and not everything:
            return set()
        known = set(self.control) | set(self.settings)
        if everything:
            affected, scope = set(known), None
        else:
            callers: dict[str, set[str]] = {}
            for name, deps in self._deps.items():
                for dep in deps:
                    callers.setdefault(dep, set()).add(name)
            affected = _closure(touched, callers)
            scope = affected & known
        for name in affected - known:
            self.issues.pop(name, None)
        if self._validate is None or (scope is not None and not scope):
            return affected
        wanted = known if scope is None else _closure(scope, self._deps) & known
        control = [row for name in sorted(wanted) for row in self.control.get(name, {}).values()]
        settings = [row for name in sorted(wanted) for row in self.settings.get(name, {}).values()]
        desired = self._validate(control, settings, scope)
        for name in affected & known:
            found = [str(issue) for issue in desired.issues.get(name, [])]
            if found:
                self.issues[name] = found
            else:
                self.issues.pop(name, None)
        return affected

    def _poll_tracking(self, version: int | None) -> set[str]:
        touched: set[str] = set()
        for before, after in self._mirrors["jobs"].poll(version):
            for row in (before, after):
                if row is not None and row.get("module_name"):
                    name = str(row["module_name"])
                    touched.add(name)
                    self.tracking.get(name, {}).pop(row["target"], None)
            if after is not None and after.get("module_name"):
                self.tracking.setdefault(str(after["module_name"]), {})[after["target"]] = after
        for name in touched:
            if not self.tracking.get(name):
                self.tracking.pop(name, None)
        return touched

    def _poll_history(self, version: int | None) -> set[str]:
        mirror = self._mirrors["history"]
        touched: set[str] = set()
        for before, after in mirror.poll(version):
            for row in (before, after):
                if row is not None and row.get("module_name"):
                    name = str(row["module_name"])
                    touched.add(name)
                    self.history.setdefault(name, {}).pop(mirror.key_of(row), None)
            if after is not None and after.get("module_name"):
                self.history[str(after["module_name"])][mirror.key_of(after)] = after
        for name in touched:
            latest = latest_history(self.history.get(name, {}).values()).get(name)
            if latest:
                self._latest[name] = latest
            else:
                self._latest.pop(name, None)
            if not self.history.get(name):
                self.history.pop(name, None)
        return touched

    def _poll_runs(self, version: int | None, health: set[str]) -> set[str]:
        jobs: set[int] = set()
        for before, after in self._mirrors["runs"].poll(version):
            for row in (before, after):
                if row is None:
                    continue
                name, run_id, job_id = (
                    str(row.get("module_name")),
                    int(row.get("run_id") or 0),
                    int(row.get("job_id") or 0),
                )
                health.add(name)
                jobs.add(job_id)
                self.runs.get(name, {}).pop(run_id, None)
                self._job_runs.get(job_id, {}).pop(run_id, None)
            if after is not None:
                run_id, job_id = int(after.get("run_id") or 0), int(after.get("job_id") or 0)
                self.runs.setdefault(str(after.get("module_name")), {})[run_id] = after
                self._job_runs.setdefault(job_id, {})[run_id] = after
        touched: set[str] = set()
        for job_id in jobs:
            runs = self._job_runs.get(job_id)
            view = latest_run_views(runs.values()).get(job_id) if runs else None
            if view is None:
                self._job_runs.pop(job_id, None)
                self._latest_runs.pop(job_id, None)
            else:
                self._latest_runs[job_id] = view
            touched |= self._job_modules.get(job_id, set())
        for name in list(health):
            if not self.runs.get(name):
                self.runs.pop(name, None)
        return touched

    def _read_state(self, state_version: int | None, control_version: int | None, now: float) -> set[str]:
        """The header (versions, lease, rejected files) and the held ``sync: manual`` changes,
        from the mirrored state rows; returns the modules whose held changes or rejections moved."""
        self._mirrors["state"].poll(state_version)
        rows = list(self._mirrors["state"].rows.values())
        shim = SimpleNamespace(
            state=SimpleNamespace(read_all=lambda: rows),
            control=SimpleNamespace(version=lambda: control_version),
        )
        self.header = read_state_header(shim, self.control_table, now=now)
        store = StateStore(shim.state, control_table_id(self.control_table), now=lambda: now)
        pending = pending_by_module(store.get(StateKey.PENDING_MANUAL) or {})
        touched = {
            name for name in set(pending) | set(self._pending) if pending.get(name) != self._pending.get(name)
        }
        self._pending = pending
        if self.header["rejected_files"] != self._rejected:
            self._rejected = self.header["rejected_files"]
            touched |= {
                name
                for name, doc in self.docs.items()
                if doc["rejections"] != rejections(doc, self._rejected)
            }
        return touched

    def _judge(self, modules: Iterable[str], now: float) -> set[str]:
        """Run health of ``modules``, as ``health_of_rows`` judges it (a module with neither runs
        nor a row in the modules table has none); returns those whose health changed."""
        touched: set[str] = set()
        for name in modules:
            runs = [RunFacts.from_row(r) for r in self.runs.get(name, {}).values()]
            judged = (
                module_health(name, runs, now=now, limit_seconds=self._limits.get(name))
                if runs or name in self._limits
                else None
            )
            if any(r.ended is None for r in runs):
                self._timed.add(name)
            else:
                self._timed.discard(name)
            if judged != self._health.get(name) or name not in self._health:
                self._health[name] = judged
                touched.add(name)
        return touched

    def _rebuild(self, dirty: set[str]) -> None:
        """The entries and overview rows of ``dirty`` modules; the module list if it moved."""
        for name in dirty:
            for job_id in self._jobs_of(self.docs.get(name)):
                self._job_modules.get(job_id, set()).discard(name)
            if not (
                self.control.get(name)
                or self.settings.get(name)
                or self.tracking.get(name)
                or self._latest.get(name)
            ):
                self.docs.pop(name, None)
                self.rows.pop(name, None)
                continue
            health = self._health.get(name)
            doc = module_status(
                name,
                control_rows=self.control.get(name, {}).values(),
                in_modules_table=bool(self.settings.get(name)),
                tracking=self.tracking.get(name, {}),
                history=self._latest.get(name, {}),
                pending=self._pending.get(name, {}),
                issues=self.issues.get(name, []),
                health=health.as_dict() if health is not None else None,
                latest_runs=self._latest_runs,
            )
            doc["rejections"] = rejections(doc, self._rejected)
            doc["sync_manual"] = any(_sync_manual(row) for row in self.settings.get(name, {}).values())
            self.docs[name] = doc
            for job_id in self._jobs_of(doc):
                self._job_modules.setdefault(job_id, set()).add(name)
            row = self._row_of(doc)
            if self.rows.get(name) != row:
                self.rows[name] = row  # an equal row keeps its object: its HTML is kept too
        if any((name in self.docs) != (name in self._named) for name in dirty):
            self.names = sorted(self.docs)
            self._named = set(self.names)

    @staticmethod
    def _jobs_of(doc: Mapping[str, Any] | None) -> list[int]:
        return [t["job_id"] for t in (doc or {}).get("targets", ()) if t.get("job_id")]


def _sync_manual(row: Mapping[str, Any]) -> bool:
    """Whether a modules-table row says ``sync: manual`` (changes wait for ``apply --module``)."""
    try:
        settings = json.loads(row.get("settings") or "{}")
    except (TypeError, ValueError):
        return False
    return isinstance(settings, dict) and settings.get("sync") == "manual"


def _closure(start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    seen = set(start)
    pending = list(seen)
    while pending:
        for nxt in edges.get(pending.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                pending.append(nxt)
    return seen
