"""The desired state kept between processes: a hit answers exactly as the tables would, and
anything it was computed from, changed, is a miss."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("deltalake")

from lakeflow_job_meta.engine import desired_cache
from lakeflow_job_meta.engine.metadata_manager import MetadataStore
from lakeflow_job_meta.engine.targets.base import job_json
from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.planning.compiler import CompiledJob
from tests.helpers.bundle_world import World


@pytest.fixture
def table_reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each time the desired state is computed from the tables."""
    calls: list[Any] = []
    original = MetadataStore.desired_state

    def spy(self: MetadataStore, only_modules: set[str] | None = None) -> Any:
        calls.append(only_modules)
        return original(self, only_modules)

    monkeypatch.setattr(MetadataStore, "desired_state", spy)
    return calls


@pytest.fixture
def jobs_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each compiled job read back from a cache file."""
    seen: list[str] = []
    original = desired_cache._StoredJobs.__getitem__

    def spy(self: Any, module: str) -> CompiledJob:
        seen.append(module)
        return original(self, module)

    monkeypatch.setattr(desired_cache._StoredJobs, "__getitem__", spy)
    return seen


def plan_of(world: World, **kwargs: Any) -> list[tuple[str, str, str | None]]:
    return [(c.module, c.action, c.job_name) for c in world.orchestrator(**kwargs).plan().changes]


def cache_files() -> list[Path]:
    directory = desired_cache.default_cache_dir()
    assert directory is not None
    return sorted(directory.glob("*.sqlite"))


def test_a_second_process_plans_from_the_cache_without_reading_a_row_or_a_job(
    tmp_path: Path, table_reads: list[Any], jobs_read: list[str]
) -> None:
    world = World(tmp_path)
    assert world.apply().ok
    assert table_reads == [None] and len(cache_files()) == 1
    first = plan_of(world)  # a new orchestrator each time, as a new process would build
    second = plan_of(world)
    assert table_reads == [None]  # neither plan read the tables
    assert first == second and {action for _, action, _ in first} == {"noop"}
    assert jobs_read == []  # unchanged modules are decided by their summaries alone
    assert {name for _, _, name in first} >= {"sales_daily"}


def test_a_row_change_is_a_miss_and_the_plan_shows_it(tmp_path: Path, table_reads: list[Any]) -> None:
    world = World(tmp_path)
    assert world.apply().ok
    world.edit("{load_mode: streaming}", "{load_mode: batch}")
    changed = dict((m, a) for m, a, _ in plan_of(world))
    assert changed["clickstream_continuous"] == "update"
    assert len(table_reads) == 2
    assert dict((m, a) for m, a, _ in plan_of(world)) == changed and len(table_reads) == 2  # stored again


def test_a_table_dropped_and_loaded_again_is_never_served_an_old_state(
    tmp_path: Path, table_reads: list[Any]
) -> None:
    world = World(tmp_path)
    assert world.apply().ok
    for suffix in ("", "_modules"):
        shutil.rmtree(world.control + suffix)
    world.manager.ensure_exists()
    (world.volume / "examples.yaml").write_text(
        (world.volume / "examples.yaml").read_text().replace("{load_mode: streaming}", "{load_mode: batch}")
    )
    world.sync()
    assert dict((m, a) for m, a, _ in plan_of(world))["clickstream_continuous"] == "update"
    assert len(table_reads) == 2


def test_a_different_policy_is_a_miss(tmp_path: Path, table_reads: list[Any]) -> None:
    world = World(tmp_path)
    assert world.apply().ok
    policy = tmp_path / "policy.yaml"
    policy.write_text("code_paths:\n  allowed_prefixes: [/Repos/nowhere/]\n")
    changes = world.orchestrator(policy=str(policy)).plan().changes
    assert len(table_reads) == 2
    assert {c.action for c in changes} == {"error"}
    assert {c.action for c in world.orchestrator().plan().changes} == {"noop"}  # its own entry


def test_an_unreadable_cache_file_is_a_miss_with_the_same_answer(
    tmp_path: Path, table_reads: list[Any]
) -> None:
    world = World(tmp_path)
    assert world.apply().ok
    expected = plan_of(world)
    (path,) = cache_files()
    path.write_bytes(b"not a database")
    assert plan_of(world) == expected
    assert len(table_reads) == 2
    assert plan_of(world) == expected and len(table_reads) == 2  # written again, then hit


def test_the_cache_can_be_turned_off(
    tmp_path: Path, table_reads: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(desired_cache.CACHE_DIR_VARIABLE, "off")
    world = World(tmp_path)
    assert world.apply().ok
    plan_of(world)
    assert len(table_reads) == 2


def test_a_code_change_is_a_miss(
    tmp_path: Path, table_reads: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path)
    assert world.apply().ok
    monkeypatch.setattr(desired_cache, "code_fingerprint", lambda: "another version")
    plan_of(world)
    assert len(table_reads) == 2


def test_jobs_issues_and_owner_identity_read_back_as_stored(tmp_path: Path) -> None:
    cache = desired_cache.DesiredStateCache(tmp_path / "a ?odd #folder")
    job = CompiledJob(
        module_name="m",
        job_name="[dev] m",
        settings={"name": "[dev] m", "tasks": [{"task_key": "a", "max_retries": 2}], "timeout_seconds": 1.5},
        managed_files={"/Workspace/x.sql": "select 1"},
        run_job_refs={"a": "other"},
        permissions=[{"user_name": "u", "permission_level": "IS_OWNER"}],
        declared_permissions=[],
        explicit_pause=True,
    )
    issue = MetadataIssue(
        "f.yaml:3", "modules[0].x", "bad", module="n", file="f.yaml", related_files=("g.yaml",)
    )
    summaries = {"m": desired_cache.JobSummary.of(job)}
    cache.store(
        "k", "stamp", {"m": job_json(job)}, summaries, {"n": [issue]}, {"m", "n"}, "RunIdentity(user u)"
    )
    assert cache.load("k", "another stamp") is None
    assert cache.load("other key", "stamp") is None
    loaded = cache.load("k", "stamp")
    assert loaded is not None
    assert loaded.compiled["m"] == job and list(loaded.compiled) == ["m"] and "n" not in loaded.compiled
    assert loaded.summaries == summaries and loaded.known == {"m", "n"}
    (read,) = loaded.issues["n"]
    assert (read, read.module, read.file, read.related_files) == (issue, "n", "f.yaml", ("g.yaml",))
    assert loaded.identity == "RunIdentity(user u)"
    with pytest.raises(KeyError):
        loaded.compiled["n"]
