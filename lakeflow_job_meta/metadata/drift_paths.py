"""The job-settings paths a module may list under ``ignore_drift``.

A module hands a field to the UI (``ignore_drift: [schedule.pause_status]``): a live change of it
is neither reported nor restored. The list is closed so that a typo fails validation (with a
"did you mean") instead of silently ignoring nothing. The job's name, its tasks and the ownership
tags are the tool's own and never listed: handing them to the UI would let a job drift away from
its module or lose the tags that say it is ours.
"""

from __future__ import annotations

import difflib

from lakeflow_job_meta.metadata.tags import TOOL_TAG_KEYS

_NOTIFICATION_EVENTS = (
    "on_start",
    "on_success",
    "on_failure",
    "on_duration_warning_threshold_exceeded",
    "on_streaming_backlog_exceeded",
)
_PAUSABLE = ("schedule", "trigger", "continuous")

IGNORABLE_DRIFT_PATHS: frozenset[str] = frozenset(
    {
        "description",
        "schedule",
        "schedule.quartz_cron_expression",
        "schedule.timezone_id",
        "trigger",
        "trigger.file_arrival",
        "trigger.table_update",
        "trigger.periodic",
        "continuous",
        "continuous.task_retry_mode",
        *(f"{block}.pause_status" for block in _PAUSABLE),
        "email_notifications",
        *(f"email_notifications.{event}" for event in _NOTIFICATION_EVENTS),
        "email_notifications.no_alert_for_skipped_runs",
        "webhook_notifications",
        *(f"webhook_notifications.{event}" for event in _NOTIFICATION_EVENTS),
        "notification_settings",
        "notification_settings.no_alert_for_skipped_runs",
        "notification_settings.no_alert_for_canceled_runs",
        "health",
        "health.rules",
        "timeout_seconds",
        "max_concurrent_runs",
        "queue",
        "queue.enabled",
        "edit_mode",
        "parameters",
        "run_as",
        "job_clusters",
        "environments",
    }
)
# ``tags.<key>``: one user tag (never an ownership tag).
TAG_PATH_PREFIX = "tags."


def drift_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be listed under ``ignore_drift`` (with the nearest known path), or None."""
    if path in IGNORABLE_DRIFT_PATHS:
        return None
    if path.startswith(TAG_PATH_PREFIX) and len(path) > len(TAG_PATH_PREFIX):
        key = path[len(TAG_PATH_PREFIX) :]
        if key in TOOL_TAG_KEYS:
            return f"'{path}' is an ownership tag of the tool; it is never handed to the UI"
        return None
    if path == "tags":
        return "the tags as a whole hold the tool's ownership tags; list one user tag instead (tags.KEY)"
    if path == "name" or path.startswith("tasks") or path == "format":
        return f"'{path}' is the tool's own (the job's name and tasks follow the metadata)"
    near = difflib.get_close_matches(path, sorted(IGNORABLE_DRIFT_PATHS), n=1, cutoff=0.6)
    hint = f"; did you mean '{near[0]}'?" if near else ""
    return f"unknown job-settings path '{path}'{hint} (known: schedule.pause_status, max_concurrent_runs, tags.KEY, ...)"
