"""Found in review: delta-rs writes some data files with ``string_view`` columns (a state table
holding bundle manifests, after its merges and compaction), while the table's schema says
``string``. Arrow has no kernel comparing the two, so a key filter pushed into the scan failed:
the lease's compare-and-set and the seed check raised ArrowNotImplementedError, and every apply
on such a table stopped. Keys are now matched after the scan, on the column cast to strings."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

deltalake = pytest.importorskip("deltalake")
pa = pytest.importorskip("pyarrow")

from lakeflow_job_meta.engine.lease import Lease  # noqa: E402
from lakeflow_job_meta.storage import open_tables  # noqa: E402
from lakeflow_job_meta.storage.naming import control_table_id  # noqa: E402
from tests.fakes import FakeClock  # noqa: E402


def test_lease_seed_and_key_reads_work_on_string_view_data_files(tmp_path: Path) -> None:
    name = str(tmp_path / "ctl")
    tables = open_tables(name)
    tables.state.create_or_migrate(seed=[tables.lease_seed()])
    scope = control_table_id(name)
    keys = ["progress", "bundle_manifest:/a", "environment:dev"]
    deltalake.write_deltalake(
        name + "_state",
        pa.table(
            {
                "scope": pa.array([scope] * 3, pa.string_view()),
                "key": pa.array(keys, pa.string_view()),
                "value": pa.array(["{}"] * 3, pa.string_view()),
                "updated_at": pa.array(
                    [datetime(2026, 1, 1, tzinfo=timezone.utc)] * 3, pa.timestamp("us", tz="UTC")
                ),
            }
        ),
        mode="append",
    )
    fresh = open_tables(name)
    fresh.ensure_exists()  # the seed check of a table that exists
    lease = Lease(fresh.state, holder_id="A", scope=scope, clock=FakeClock())
    assert lease.try_acquire()
    info = lease.holder_info()
    assert info is not None and info.holder == "A"
    assert [r["key"] for r in fresh.state.read_matching("key", ["progress", "lease"])] == [
        "lease",
        "progress",
    ]
