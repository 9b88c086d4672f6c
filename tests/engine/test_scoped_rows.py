"""A scoped desired state reads only the rows of its modules (and the modules their run_job
tasks name), and equals what the whole tables give for that scope."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("deltalake")

from lakeflow_job_meta.engine.metadata_manager import desired_state_from_rows
from tests.helpers.bundle_world import World


@pytest.mark.parametrize("scope", [{"nightly_umbrella"}, {"clickstream_continuous"}, {"no_such_module"}])
def test_scoped_reads_give_the_same_desired_state(tmp_path: Path, scope: set[str]):
    world = World(tmp_path)
    tables = world.manager.tables
    scoped = world.manager.desired_state(only_modules=scope)
    whole = desired_state_from_rows(
        tables.control.read_all(),
        tables.modules.read_all(),
        control_table=world.manager.control_table,
        modules_table=tables.modules.name,
        only_modules=scope,
    )
    assert scoped.modules == whole.modules and scoped.issues == whole.issues
    expected = {"nightly_umbrella", "sales_daily"} if "nightly_umbrella" in scope else scope
    assert set(scoped.modules) == expected & set(whole.known)


def test_read_matching_converts_only_the_matching_rows(tmp_path: Path):
    world = World(tmp_path)
    control = world.manager.tables.control
    rows = control.read_matching("module_name", {"sales_daily", "absent"})
    assert rows and {r["module_name"] for r in rows} == {"sales_daily"}
    assert sorted(r["source_id"] for r in rows) == sorted(
        r["source_id"] for r in control.read_all() if r["module_name"] == "sales_daily"
    )
