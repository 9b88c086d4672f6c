"""Issue 17 item 5: a bundle plan says what changes in each job, as a workspace plan does.

The folder is the bundle target's actual state, so an update's diff is the job file on disk
against its new rendering, field by field, in the text plan and in ``--json`` (with the job
file's SHA-256 before and after as ``old_hash``/``new_hash``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_run import run_cli
from tests.example_files import EXAMPLES_DIR

pytest.importorskip("deltalake")

EXAMPLES = EXAMPLES_DIR / "metadata_examples.yaml"


@pytest.fixture
def applied(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """A control table loaded from a copy of the examples and applied to a bundle folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAKEFLOW_JOB_META_CACHE_DIR", "off")
    metadata = tmp_path / "volume" / "metadata.yaml"
    metadata.parent.mkdir()
    metadata.write_text(EXAMPLES.read_text(encoding="utf-8"), encoding="utf-8")
    table, target = str(tmp_path / "ctl"), f"bundle:{tmp_path / 'out'}"
    assert _load(capsys, metadata, table) == 0
    assert run_cli(capsys, "apply", "--control-table", table, "--target", target)[0] == 0
    return metadata, table, target


def _load(capsys: pytest.CaptureFixture[str], metadata: Path, table: str) -> int:
    """``load --sync`` of the metadata's folder: a module cut from the file leaves the table."""
    return run_cli(capsys, "load", "--sync", str(metadata.parent), "--control-table", table)[0]


def _edit(metadata: Path, old: str, new: str) -> None:
    text = metadata.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    metadata.write_text(text.replace(old, new), encoding="utf-8")


def test_an_execution_order_change_lists_the_dependencies_that_move(
    applied: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    metadata, table, target = applied
    _edit(
        metadata,
        "freshness_check\n        source_type: sql\n        execution_order: 3\n",
        "freshness_check\n        source_type: sql\n        execution_order: 1\n",
    )
    assert _load(capsys, metadata, table) == 0

    code, out, _ = run_cli(capsys, "plan", "--control-table", table, "--target", target)
    assert code == 0
    assert '  ~ update sales_daily "sales_daily"\n      # metadata changed\n' in out
    assert '      ~ tasks[quality_gate].depends_on: ["freshness_check"] -> ["orders_to_silver"]' in out
    assert '      ~ tasks[freshness_check].depends_on: ["orders_to_silver"] -> []' in out
    assert "Plan: 0 to create, 1 to update, 0 to delete/pause, 4 unchanged." in out

    code, out, _ = run_cli(capsys, "plan", "--control-table", table, "--target", target, "--json")
    (update,) = [c for c in json.loads(out)["changes"] if c["action"] == "update"]
    assert {
        "path": "tasks[quality_gate].depends_on",
        "desired": ["orders_to_silver"],
        "live": ["freshness_check"],
    } in update["diff"]
    assert update["old_hash"] and update["new_hash"] and update["old_hash"] != update["new_hash"]
    noops = [c for c in json.loads(out)["changes"] if c["action"] == "noop"]
    assert noops and all(c["old_hash"] == c["new_hash"] is not None for c in noops)

    # What the plan showed is what apply writes: afterwards nothing is left to change.
    assert run_cli(capsys, "apply", "--control-table", table, "--target", target)[0] == 0
    code, out, _ = run_cli(capsys, "plan", "--control-table", table, "--target", target)
    assert "No changes." in out


def test_a_setting_and_an_inline_sql_change_show_the_field_and_the_file(
    applied: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    metadata, table, target = applied
    _edit(metadata, "    timeout_seconds: 7200\n", "    timeout_seconds: 3600\n")
    _edit(
        metadata,
        "SELECT * FROM ${var.catalog}.landing.customers",
        "SELECT * FROM ${var.catalog}.landing.clients",
    )
    assert _load(capsys, metadata, table) == 0

    code, out, _ = run_cli(capsys, "plan", "--control-table", table, "--target", target)
    assert code == 0
    assert "      ~ timeout_seconds: 7200 -> 3600" in out
    assert "      + file resources/sql/sales_daily/customers_ingest.sql" in out
    assert "Files: 1 to write, 0 to delete." in out


def test_a_removed_module_shows_its_pause(
    applied: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """prune=pause rewrites a removed module's job file paused and tagged: the plan says so."""
    metadata, table, target = applied
    text = metadata.read_text(encoding="utf-8")
    start, end = (
        text.index("  - module_name: ml_features\n"),
        text.index("  - module_name: warehouse_refresh\n"),
    )
    metadata.write_text(text[:start] + text[end:], encoding="utf-8")
    assert _load(capsys, metadata, table) == 0

    code, out, _ = run_cli(capsys, "plan", "--control-table", table, "--target", target)
    assert code == 0
    assert "  ! pause ml_features" in out
    assert "      # module removed (prune=pause)" in out
    assert '      ~ trigger.pause_status: "UNPAUSED" -> "PAUSED"' in out
    assert '      + tags.ljm_removed: "true"' in out


def test_a_hand_edited_job_file_is_drift(
    applied: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The metadata did not change, the file did: the plan says so and what apply restores."""
    _metadata, table, target = applied
    job_file = Path(target.removeprefix("bundle:")) / "resources" / "sales_daily.job.yml"
    job_file.write_text(job_file.read_text().replace("timeout_seconds: 7200", "timeout_seconds: 60"))
    code, out, _ = run_cli(capsys, "plan", "--control-table", table, "--target", target)
    assert code == 0
    assert '  ~ update sales_daily "sales_daily"  [drift]' in out
    assert "      # the job file was edited outside the metadata" in out
    assert "      ~ timeout_seconds: 60 -> 7200" in out
