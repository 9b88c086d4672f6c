"""``status`` and ``history``: what the tool has done, read from its own tables.

``status`` has one row per module of the control table (plus orphaned jobs: tracked or applied
but gone from the metadata), whatever the target: a workspace job's id and URL, a bundle job's
file. Per target it shows the last apply (version, time, outcome), whether the metadata changed
since (lag), whether the last apply restored drift, the last error (metadata errors carry
``file:line``) and who changed the module's metadata last. The header says whether a monitor
holds the writer lease (and since when) or stopped (the lease expired), and lists the YAML files
the monitor rejects. Times are ISO 8601 in JSON and local time in the text.

History rows are the record of every apply, workspace and bundle alike; the tracking table adds
job ids. ``runs`` (rows of the runs table, see :mod:`lakeflow_job_meta.engine.runs`) adds each
workspace job's latest run and each module's run health (:mod:`lakeflow_job_meta.planning.health`).
Alerts are recorded in the history table under the target ``alerts``; they are not modules.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timezone
from typing import Any

from lakeflow_job_meta.adapters.bundle import bundle_stem
from lakeflow_job_meta.engine.alerts import ALERTS_TARGET
from lakeflow_job_meta.engine.lease import is_apply_holder
from lakeflow_job_meta.engine.metadata_manager import DesiredState
from lakeflow_job_meta.engine.runs import health_of_rows, module_limits
from lakeflow_job_meta.planning.plan import ORPHANED_REASON, ORPHANED_STATUS
from lakeflow_job_meta.storage.naming import control_table_id
from lakeflow_job_meta.storage.state_store import StateKey, StateStore
from lakeflow_job_meta.vocabulary import Outcome, PlanAction, TargetKind

BUNDLE_PREFIX, WORKSPACE_PREFIX = "bundle:", "workspace:"


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def iso(value: Any) -> str | None:
    moment = _as_datetime(value)
    return moment.isoformat(timespec="seconds") if moment else None


def local_time(value: Any) -> str:
    """``2026-01-05 06:30:00 CET``: the reader's time zone."""
    moment = _as_datetime(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "never"


def _target_place(target: str, job_id: int | None, job_name: str | None, module: str) -> dict[str, Any]:
    """Where the job lives: URL of a workspace job, file of a bundle job."""
    base = target.split("#env=", 1)[0]
    if base.startswith(WORKSPACE_PREFIX):
        host = base[len(WORKSPACE_PREFIX) :].rstrip("/")
        return {
            "kind": TargetKind.WORKSPACE,
            "host": host,
            "url": f"{host}/jobs/{job_id}" if job_id else None,
        }
    directory = base[len(BUNDLE_PREFIX) :] if base.startswith(BUNDLE_PREFIX) else base

    return {
        "kind": TargetKind.BUNDLE,
        "file": os.path.join(directory, "resources", f"{bundle_stem(module)}.job.yml"),
    }


def _latest_by(
    rows: Iterable[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], Any]
) -> dict[Any, Mapping[str, Any]]:
    latest: dict[Any, Mapping[str, Any]] = {}
    for row in rows:
        k = key(row)
        when = _as_datetime(row.get("started_at"))
        seen = latest.get(k)
        if seen is None or (when is not None and (_as_datetime(seen.get("started_at")) or when) <= when):
            latest[k] = row
    return latest


def _authors(control_rows: Iterable[Mapping[str, Any]]) -> dict[str | None, dict[str, Any]]:
    last: dict[str | None, dict[str, Any]] = {}
    for row in control_rows:
        module: str | None = row.get("module_name")
        when = _as_datetime(row.get("updated_at") or row.get("created_at"))
        seen = last.get(module)
        if seen is None or (when is not None and (seen["at"] is None or when > seen["at"])):
            last[module] = {"at": when, "by": row.get("updated_by") or row.get("created_by")}
    return last


STOPPED_CLEANLY = "stopped (last run completed)"


def _monitor(lease: Any, now: float) -> dict[str, Any]:
    if not isinstance(lease, dict) or "holder" not in lease:
        return {"state": "never ran", "holder": None, "since": None, "expires_at": None}
    live = float(lease.get("expires_at", 0)) > now
    # A monitor that stops cleanly (``--once``, Ctrl-C, a cancelled job) releases its lease by
    # writing it already expired at its last renewal; one that crashed leaves it to run out.
    released = lease.get("renewed_at") is not None and float(lease.get("expires_at", 0)) <= float(
        lease["renewed_at"]
    )
    if not is_apply_holder(str(lease.get("holder", ""))):
        state = "running" if live else (STOPPED_CLEANLY if released else "stopped (lease expired)")
    else:  # a CLI apply or a notebook run held it last
        state = "an apply is running" if live else "not running"
    return {
        "state": state,
        "holder": lease.get("holder"),
        "since": iso(lease.get("acquired_at")),
        "renewed_at": iso(lease.get("renewed_at")),
        "expires_at": iso(lease.get("expires_at")),
    }


def read_status(
    tables: Any,
    control_table: str,
    *,
    desired: DesiredState | None = None,
    runs: Iterable[Mapping[str, Any]] | None = None,
    now: float | None = None,
    health: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything ``status`` shows, JSON-able. ``desired`` adds the metadata's own issues;
    ``runs`` (runs-table rows) the latest runs and their health, judged here unless ``health``
    (module -> ModuleHealth) is given already judged. Each module is built by
    :func:`module_status` from its own rows, so a reader that keeps the rows (the status page)
    builds again only the modules whose rows moved."""
    tables.require_exists()
    now = now if now is not None else datetime.now(timezone.utc).timestamp()
    header = read_state_header(tables, control_table, now=now)
    pending = (
        StateStore(tables.state, control_table_id(control_table), now=lambda: now)
        .get_many([StateKey.PENDING_MANUAL])
        .get(StateKey.PENDING_MANUAL)
        or {}
    )
    control = group_by_module(tables.control.read_all())
    settings = group_by_module(tables.modules.read_all())
    tracking = by_module_and_target(tables.jobs.read_all())
    history = latest_history(tables.history.read_all())
    held = pending_by_module(pending)
    issues = {m: [str(i) for i in found] for m, found in (desired.issues if desired else {}).items()}
    latest_runs: dict[int, dict[str, Any]] | None = None
    if runs is not None:
        run_rows = list(runs)
        latest_runs = latest_run_views(run_rows)
        if health is None:
            health = health_of_rows(
                run_rows, now=now, limits=module_limits(r for rows in settings.values() for r in rows)
            )
    modules = []
    for name in module_names(control, settings, tracking, history):
        judged = (health or {}).get(name)
        modules.append(
            module_status(
                name,
                control_rows=control.get(name, ()),
                in_modules_table=name in settings,
                tracking=tracking.get(name, {}),
                history=history.get(name, {}),
                pending=held.get(name, {}),
                issues=issues.get(name, []),
                health=judged.as_dict() if judged is not None else None,
                latest_runs=latest_runs,
            )
        )
    return {**header, "modules": modules}


def group_by_module(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows of the control or modules table by module name (rows without one left out)."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("module_name"):
            grouped.setdefault(str(row["module_name"]), []).append(row)
    return grouped


def by_module_and_target(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Mapping[str, Any]]]:
    """Tracking rows: module -> target -> row."""
    grouped: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("module_name"):
            grouped.setdefault(str(row["module_name"]), {})[row["target"]] = row
    return grouped


def latest_history(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Mapping[str, Any]]]:
    """Each module's newest history row per target (alerts are not modules)."""
    latest = _latest_by(
        (r for r in rows if r.get("target") != ALERTS_TARGET and r.get("module_name")),
        lambda r: (r.get("target"), str(r.get("module_name"))),
    )
    grouped: dict[str, dict[str, Mapping[str, Any]]] = {}
    for (target, module), row in latest.items():
        grouped.setdefault(module, {})[target] = row
    return grouped


def pending_by_module(pending: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The held ``sync: manual`` changes (the state table's document, target -> module ->
    entry) by module: module -> target -> entry."""
    grouped: dict[str, dict[str, Any]] = {}
    for target, entries in pending.items():
        for module, entry in (entries or {}).items():
            grouped.setdefault(str(module), {})[str(target)] = entry
    return grouped


def module_names(*groups: Mapping[str, Any]) -> list[str]:
    """Every module ``status`` has a row for: in the metadata, tracked or in the history."""
    return sorted({name for group in groups for name in group if name})


def module_status(
    name: str,
    *,
    control_rows: Iterable[Mapping[str, Any]],
    in_modules_table: bool,
    tracking: Mapping[str, Mapping[str, Any]],
    history: Mapping[str, Mapping[str, Any]],
    pending: Mapping[str, Any],
    issues: list[str],
    health: dict[str, Any] | None = None,
    latest_runs: Mapping[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One module of ``status`` from its own rows: its control rows, its tracking rows and
    newest history row per target, its held ``sync: manual`` changes per target, its metadata
    issues; with ``latest_runs`` (job id -> newest run, runs were read) its ``health`` and each
    workspace job's latest run."""
    rows = list(control_rows)
    in_metadata = bool(rows) or in_modules_table
    author = _authors(rows).get(name) or {}
    module: dict[str, Any] = {
        "module": name,
        "in_metadata": in_metadata,
        "active": any(r.get("is_active") is not False for r in rows),
        "orphaned": not in_metadata,
        "metadata_changed_at": iso(author.get("at")),
        "metadata_changed_by": author.get("by"),
        "metadata_errors": list(issues),
        "files": sorted({str(r["source_file"]) for r in rows if r.get("source_file")}),
        "targets": [],
    }
    if latest_runs is not None:
        module["health"] = health
    changed_at = _as_datetime(author.get("at"))
    for target in sorted(set(tracking) | set(history) | set(pending), key=str):
        track, last = tracking.get(target) or {}, history.get(target) or {}
        job_id = track.get("job_id") or last.get("job_id")
        applied_at = _as_datetime(last.get("started_at")) or _as_datetime(track.get("updated_at"))
        entry = {
            "target": target,
            **_target_place(str(target), job_id, track.get("job_name"), name),
            "job_id": int(job_id) if job_id is not None else None,
            "job_name": track.get("job_name"),
            "status": track.get("status") or None,
            "applied_version": track.get("applied_version"),
            "applied_at": iso(applied_at),
            "last_action": last.get("action"),
            "last_outcome": last.get("outcome"),
            # An update that kept the hash restored a job edited outside the tool.
            "drift": bool(
                last.get("action") == PlanAction.UPDATE
                and last.get("old_hash")
                and last.get("old_hash") == last.get("new_hash")
            ),
            "lag": bool(changed_at and applied_at and changed_at > applied_at),
            "last_error": track.get("last_error") or last.get("error"),
            # The module its job went to when it was renamed (``renamed_from``), else None.
            "renamed_to": None,
            # A held change of a sync: manual module: out of sync until `apply --module`.
            "pending": _pending_view(pending.get(target)),
        }
        if last.get("action") == PlanAction.RENAME and last.get("outcome") == Outcome.OK:
            # A rename's history rows carry a note ("renamed to/from NAME"), not an error.
            note = str(last.get("error") or "")
            entry["last_error"] = track.get("last_error")
            if note.startswith("renamed to ") and not track and not in_metadata:
                entry["renamed_to"] = note.removeprefix("renamed to ")
            elif note.startswith("renamed from "):
                entry["renamed_from"] = note.removeprefix("renamed from ")
        if latest_runs is not None and entry["kind"] == TargetKind.WORKSPACE and entry["job_id"]:
            entry["latest_run"] = latest_runs.get(entry["job_id"])
        module["targets"].append(entry)
    return module


def read_state_header(tables: Any, control_table: str, *, now: float) -> dict[str, Any]:
    """The part of ``status`` the state table and the control table's version decide: versions
    and lag, the monitor's lease, rejected files. Apart, so a reader that kept the modules (the
    status page) re-reads only this when just the state table moved (a lease renewal)."""
    store = StateStore(tables.state, control_table_id(control_table), now=lambda: now)
    state = store.get_many([StateKey.PROGRESS, StateKey.LEASE, StateKey.REJECTED_FILES])
    progress = state.get(StateKey.PROGRESS) or {}
    current = tables.control.version()
    applied = progress.get("applied_control_version")
    return {
        "control_table": control_table,
        "control_version": current,
        "applied_control_version": applied,
        "lag_versions": None if applied is None else max(0, current - int(applied)),
        "last_good_cycle_at": iso(progress.get("last_good_cycle_at")),
        "monitor": _monitor(state.get(StateKey.LEASE), now),
        "rejected_files": state.get(StateKey.REJECTED_FILES) or {},
    }


def latest_run_views(rows: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """job id -> its newest run, in the shape ``status`` has always shown."""
    latest: dict[int, Mapping[str, Any]] = {}
    for row in rows:
        job_id = int(row.get("job_id") or 0)
        seen = latest.get(job_id)
        if seen is None or int(row.get("run_id") or 0) > int(seen.get("run_id") or 0):
            latest[job_id] = row
    return {
        job_id: {
            "run_id": row.get("run_id"),
            "state": " ".join(str(p) for p in (row.get("life_cycle_state"), row.get("result_state")) if p)
            or None,
            "start_time": iso(row.get("started_at")),
            "duration_seconds": row.get("duration_seconds"),
            "error": row.get("error"),
            "url": row.get("run_page_url"),
        }
        for job_id, row in latest.items()
    }


def _pending_view(entry: Any) -> dict[str, Any] | None:
    if not isinstance(entry, Mapping):
        return None
    return {**entry, "detected_at": iso(entry.get("detected_at"))}


def render_status(status: Mapping[str, Any]) -> str:
    monitor = status["monitor"]
    lag = status["lag_versions"]
    lines = [
        f"Control table {status['control_table']}: version {status['control_version']}, "
        + (
            f"applied {status['applied_control_version']} (lag {lag} version{'s' if lag != 1 else ''})"
            if status["applied_control_version"] is not None
            else "never applied by a monitor"
        ),
    ]
    if monitor["state"] == "running":
        lines.append(
            f"Monitor: running, {monitor['holder']} holds the lease since {local_time(monitor['since'])}"
        )
    elif monitor["state"] == STOPPED_CLEANLY:
        lines.append(
            f"Monitor: not running; its last run ({monitor['holder']}) completed {local_time(monitor['renewed_at'])}"
        )
    elif monitor["state"].startswith("stopped"):
        lines.append(
            f"Monitor: STOPPED, the lease of {monitor['holder']} expired {local_time(monitor['expires_at'])}"
        )
    elif monitor["holder"]:
        lines.append(
            f"Monitor: {monitor['state']} (last writer {monitor['holder']}, {local_time(monitor['renewed_at'])})"
        )
    else:
        lines.append("Monitor: never ran on this control table")
    if status["last_good_cycle_at"]:
        lines.append(f"Last good monitor cycle: {local_time(status['last_good_cycle_at'])}")
    for path, issues in sorted(status["rejected_files"].items()):
        lines.append(f"Rejected file {path}:")
        lines += [f"    {issue}" for issue in issues]
    lines.append("")
    for module in status["modules"]:
        flags = [] if module["active"] or module["orphaned"] else ["inactive"]
        renamed = [t["renamed_to"] for t in module["targets"] if t.get("renamed_to")]
        if module["orphaned"] and renamed and len(renamed) == len(module["targets"]):
            flags.append(f"renamed to {', '.join(sorted(set(renamed)))}")
        elif module["orphaned"]:
            flags.append("orphaned: not in the metadata")
        head = module["module"] + (f" ({', '.join(flags)})" if flags else "")
        if module["metadata_changed_by"]:
            head += (
                f"  changed by {module['metadata_changed_by']} {local_time(module['metadata_changed_at'])}"
            )
        lines.append(head)
        for error in module["metadata_errors"]:
            lines.append(f"    error: {error}")
        judged = module.get("health")
        if judged and judged["state"] != "no_runs":
            line = f"    runs: {judged['state']}"
            if judged["consecutive_failures"]:
                line += f", {judged['consecutive_failures']} consecutive failure(s)"
            lines.append(line)
            lines += [f"        {problem['message']}" for problem in judged["problems"]]
        if not module["targets"]:
            lines.append("    not applied yet")
        for t in module["targets"]:
            where = t.get("url") or f"job {t['job_id']}" if t["kind"] == TargetKind.WORKSPACE else t["file"]
            line = f"    {where}: {t['last_action'] or t['status'] or 'tracked'}"
            if t["status"] == ORPHANED_STATUS:
                line = f"    ! {module['module']}: {where}: {ORPHANED_REASON}"
            if t["last_outcome"] and t["last_outcome"] != Outcome.OK:
                line += f" ({t['last_outcome']})"
            line += f", applied {local_time(t['applied_at'])}"
            if t["applied_version"] is not None:
                line += f" (v{t['applied_version']})"
            if t["lag"]:
                line += ", metadata changed since"
            if t["drift"]:
                line += ", drift restored"
            if t.get("renamed_from"):
                line += f", renamed from {t['renamed_from']}"
            lines.append(line)
            if t.get("pending"):
                held = t["pending"]
                lines.append(
                    f"        OUT OF SYNC (sync: manual): {held.get('action')} pending since "
                    f"{local_time(held.get('detected_at'))}; apply it with `apply --module {module['module']}`"
                )
                lines += [f"            {item}" for item in held.get("diff") or []]
            if t.get("latest_run"):
                run = t["latest_run"]
                lines.append(
                    f"        latest run {run.get('run_id')}: {run.get('state')} {local_time(run.get('start_time'))}"
                )
            if t["last_error"]:
                lines.append(f"        error: {t['last_error']}")
    return "\n".join(lines).rstrip()


def read_history(
    tables: Any, *, module: str | None = None, since: str | None = None, limit: int | None = 50
) -> list[dict[str, Any]]:
    """History rows, newest first, filtered by module and start date (``YYYY-MM-DD``, UTC)."""
    tables.require_exists()
    start = None
    if since:
        try:
            start = datetime.combine(date.fromisoformat(since), datetime.min.time(), timezone.utc)
        except ValueError as error:
            from lakeflow_job_meta.errors import ConfigurationError

            raise ConfigurationError(f"--since must be a date YYYY-MM-DD, got {since!r}") from error
    return history_rows(
        (r for r in tables.history.read_all() if module is None or r.get("module_name") == module),
        since=start,
        limit=limit,
    )


def history_rows(
    rows: Iterable[Mapping[str, Any]], *, since: datetime | None = None, limit: int | None = 50
) -> list[dict[str, Any]]:
    """History rows started at or after ``since``, newest first, times as ISO text."""
    found = []
    for row in rows:
        started = _as_datetime(row.get("started_at"))
        if since is not None and (started is None or started < since):
            continue
        found.append({**row, "started_at": iso(started)})
    found.sort(key=lambda r: (r["started_at"] or "", r.get("module_name") or ""), reverse=True)
    return found[:limit] if limit is not None and limit >= 0 else found


def render_history(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No history."
    lines = []
    for r in rows:
        line = f"{local_time(r['started_at'])}  {r.get('module_name')}: {r.get('action')} {r.get('outcome')}"
        if r.get("job_id"):
            line += f" (job {r['job_id']})"
        line += f"  [{r.get('target')}]"
        if r.get("error") and r.get("action") == PlanAction.RENAME and r.get("outcome") == Outcome.OK:
            line += f"  {r['error']}"  # "renamed to/from NAME": the rename's note, not a failure
        elif r.get("error"):
            line += f"  error: {r['error']}"
        lines.append(line)
    return "\n".join(lines)
