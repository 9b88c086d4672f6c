"""The bundle target's recorded hashes: a plan renders only modules whose inputs changed or whose
files on disk no longer match what was written, and answers exactly as a full re-render would."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("deltalake")

from lakeflow_job_meta.adapters import bundle as bundle_adapter
from tests.helpers.bundle_world import World


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Modules whose files were rendered (spied)."""
    seen: list[str] = []
    original = bundle_adapter.render_job_files

    def spy(job, keys=None):
        seen.append(job.module_name)
        return original(job, keys)

    monkeypatch.setattr(bundle_adapter, "render_job_files", spy)
    return seen


def actions(world: World) -> dict[str, str]:
    return {c.module: c.action for c in world.orchestrator().plan().changes}


def test_a_no_change_plan_renders_nothing_and_a_changed_module_alone(tmp_path: Path, rendered: list[str]):
    world = World(tmp_path)
    assert world.apply().ok
    assert len(rendered) == 5  # the first apply renders every job
    rendered.clear()
    assert set(actions(world).values()) == {"noop"}
    assert rendered == []
    assert {r.action for r in world.apply()} == {"noop"} and rendered == []

    text = (world.volume / "examples.yaml").read_text()
    (world.volume / "examples.yaml").write_text(text.replace("{load_mode: streaming}", "{load_mode: batch}"))
    world.sync()
    assert actions(world)["clickstream_continuous"] == "update"
    assert rendered == ["clickstream_continuous"]


def test_a_file_edited_or_removed_by_hand_is_rendered_again(tmp_path: Path, rendered: list[str]):
    world = World(tmp_path)
    assert world.apply().ok
    job_file = world.bundle / "resources" / "sales_daily.job.yml"
    original = job_file.read_text()
    job_file.write_text(original.replace("max_concurrent_runs: 1", "max_concurrent_runs: 9"))
    sql_files = sorted((world.bundle / "resources" / "sql").rglob("*.sql"))
    assert sql_files
    sql_files[0].unlink()
    rendered.clear()
    found = actions(world)
    owner = sql_files[0].parent.name
    assert found["sales_daily"] == "update" and found[owner] == "update"
    assert sorted(rendered) == sorted({"sales_daily", owner})
    assert world.apply().ok
    assert job_file.read_text() == original and sql_files[0].is_file()
    rendered.clear()
    assert set(actions(world).values()) == {"noop"} and rendered == []
