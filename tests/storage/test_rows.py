"""The typed rows of the tool's tables name exactly the columns of their table specs."""

from __future__ import annotations

import dataclasses

import pytest

from lakeflow_job_meta.storage.rows import HistoryRow, RunRow, StateRow, TrackingRow
from lakeflow_job_meta.storage.tables import HISTORY_SPEC, JOBS_SPEC, RUNS_SPEC, STATE_SPEC


@pytest.mark.parametrize(
    ("row_type", "spec"),
    [(TrackingRow, JOBS_SPEC), (HistoryRow, HISTORY_SPEC), (StateRow, STATE_SPEC), (RunRow, RUNS_SPEC)],
)
def test_row_fields_are_the_spec_columns(row_type: type, spec) -> None:
    assert tuple(f.name for f in dataclasses.fields(row_type)) == spec.column_names


def test_tracking_row_round_trips_through_a_table_row() -> None:
    row = TrackingRow(
        target="workspace:h", module_name="m", job_id=7, spec_hash="v1:x", status="ok",
        managed_files={"/a.sql": "h"}, paused_by_tool=True,
    )  # fmt: skip
    written = row.as_row()
    assert written["managed_files"] == '{"/a.sql": "h"}' and "updated_at" not in written
    assert TrackingRow.from_row(written) == row


def test_a_tracking_row_of_an_older_version_reads_its_nulls_as_defaults() -> None:
    old = {"target": "t", "module_name": "m", "job_id": None, "managed_files": None, "status": None}
    assert TrackingRow.from_row(old) == TrackingRow(target="t", module_name="m")
