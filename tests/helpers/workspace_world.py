"""A workspace world: a control table in ``tmp_path`` loaded from a YAML folder (the examples by
default) and the Jobs API emulator through the real SDK (the ``world`` fixture)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lakeflow_job_meta import JobOrchestrator, MetadataManager
from lakeflow_job_meta.adapters.retrying import RetryPolicy
from lakeflow_job_meta.planning.ownership import MODULE_TAG, TABLE_TAG, TOOL_TAG, owner_tags
from lakeflow_job_meta.storage.naming import control_table_id
from tests.example_files import EXAMPLES

FILE_WRITE = ("POST", "workspace/import")
# A fault that outlasts our retries of an idempotent call (one call's attempts).
ATTEMPTS = RetryPolicy().max_attempts


class World:
    """A control table in ``tmp_path`` loaded from a YAML folder, and the emulator."""

    def __init__(self, tmp_path: Path, emulator, make_workspace_client, yaml_text: str | None = None):
        self.emu = emulator
        self.tmp = tmp_path
        self.control = str(tmp_path / "ctl")
        self.volume = tmp_path / "volume"
        self.volume.mkdir()
        self.yaml = self.volume / "metadata.yaml"
        self.yaml.write_text(EXAMPLES.read_text() if yaml_text is None else yaml_text)
        self.client = make_workspace_client(retry_timeout_seconds=10, http_timeout_seconds=5)
        self.manager = MetadataManager(self.control)
        self.manager.ensure_exists()
        self.table_id = control_table_id(self.control)
        self.sync()

    def sync(self):
        return self.manager.sync_from_volume(str(self.volume))

    def edit_yaml(self, old: str, new: str) -> None:
        text = self.yaml.read_text()
        assert text.count(old) == 1, old
        self.yaml.write_text(text.replace(old, new))
        self.sync()

    def orchestrator(self, **kwargs: Any) -> JobOrchestrator:
        kwargs.setdefault("target", "workspace")
        kwargs.setdefault("retry_policy", RetryPolicy(sleep=lambda seconds: None))  # no waiting
        return JobOrchestrator(self.control, self.client, **kwargs)

    def ours(self) -> dict[str, list[int]]:
        """module tag -> ids of live jobs carrying all our ownership tags."""
        found: dict[str, list[int]] = {}
        for job_id, job in self.emu.jobs().items():
            tags = job["settings"].get("tags") or {}
            if (
                tags.get(TOOL_TAG) == "managed"
                and tags.get(TABLE_TAG) == owner_tags(self.table_id, "x")[TABLE_TAG]
            ):
                found.setdefault(tags[MODULE_TAG], []).append(job_id)
        return found

    def tracked(self) -> dict[str, dict[str, Any]]:
        return {row["module_name"]: row for row in self.manager.tables.jobs.read_all()}

    def settings(self, job_id: int) -> dict[str, Any]:
        job = self.emu.job(job_id)
        assert job is not None
        return job["settings"]

    def file_writes(self) -> int:
        return self.emu.request_counts()[FILE_WRITE]

    def other_writes(self) -> Counter:
        """Non-job writes the emulator received (files, folders, permissions)."""
        return Counter(
            {
                (m, e): n
                for (m, e), n in self.emu.request_counts().items()
                if m in ("POST", "PUT", "PATCH") and not e.startswith("jobs/")
            }
        )


@pytest.fixture
def world(tmp_path, jobs_emulator, make_workspace_client) -> World:
    return World(tmp_path, jobs_emulator, make_workspace_client)


def converge(world: World, **kwargs: Any):
    """First apply, asserting it succeeded for every module."""
    result = world.orchestrator(**kwargs).run_all_modules()
    assert result.ok, [r.as_dict() for r in result if not r.ok]
    return result
