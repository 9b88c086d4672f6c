"""Helpers of the reliability suite: a client that never waits, generated metadata, invariants."""

from __future__ import annotations

from collections import Counter
from typing import Any

from lakeflow_job_meta.planning.ownership import MODULE_TAG, TABLE_TAG, TOOL_TAG, owner_tags
from lakeflow_job_meta.storage.naming import control_table_id
from tests.emulator.server import JobsEmulator
from tests.fakes import InstantSdkClock


def instant_client(
    emulator: JobsEmulator, *, http_timeout_seconds: float = 5, retry_timeout_seconds: int = 60
) -> Any:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    config = Config(
        host=emulator.url,
        token="t",
        retry_timeout_seconds=retry_timeout_seconds,
        http_timeout_seconds=http_timeout_seconds,
        clock=InstantSdkClock(),
    )
    return WorkspaceClient(config=config)


def modules_yaml(count: int, *, prefix: str = "mod", sources: int = 2) -> str:
    """``count`` modules of ``sources`` notebook tasks each, every third one scheduled."""
    out = ["modules:"]
    for m in range(count):
        name = f"{prefix}{m:03d}"
        out.append(f"  - module_name: {name}")
        if m % 3 == 0:
            out.append('    schedule: {quartz_cron_expression: "0 0 5 * * ?", timezone_id: UTC}')
        out.append("    sources:")
        for s in range(sources):
            out += [
                f"      - source_id: {name}_s{s}",
                "        source_type: notebook",
                f"        execution_order: {s + 1}",
                f"        transformation_config: {{task_type: notebook, notebook_path: /Workspace/{name}/{s}}}",
            ]
    return "\n".join(out) + "\n"


def ours_by_module(emulator: JobsEmulator, control_table: str) -> dict[str, list[int]]:
    """module tag -> ids of live jobs carrying all our ownership tags for this control table."""
    table_tag = owner_tags(control_table_id(control_table), "x")[TABLE_TAG]
    found: dict[str, list[int]] = {}
    for job_id, job in emulator.jobs().items():
        tags = job["settings"].get("tags") or {}
        if tags.get(TOOL_TAG) == "managed" and tags.get(TABLE_TAG) == table_tag:
            found.setdefault(tags[MODULE_TAG], []).append(job_id)
    return found


def assert_one_job_per_module(emulator: JobsEmulator, control_table: str, modules: set[str]) -> None:
    """Exactly one live job per module, and the tracking table names exactly that job."""
    from lakeflow_job_meta.storage import open_tables

    ours = ours_by_module(emulator, control_table)
    counts = Counter({m: len(ids) for m, ids in ours.items()})
    assert set(ours) == modules, sorted(set(ours) ^ modules)
    assert set(counts.values()) == {1}, {m: n for m, n in counts.items() if n != 1}
    tracked = {
        row["module_name"]: int(row["job_id"])
        for row in open_tables(control_table).jobs.read_all()
        if row.get("job_id") is not None
    }
    assert tracked == {m: ids[0] for m, ids in ours.items()}
