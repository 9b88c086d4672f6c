"""The status page over real local tables, through real HTTP: every page answers, the JSON API
mirrors it, filters work, a failing module is marked and its rejected edit names file:line,
and nothing but GET is accepted."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

import pytest

from lakeflow_job_meta.storage import open_tables
from tests.run_world import BROKEN_LINE
from tests.web.conftest import REPORTS_EDIT, Served


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url) as reply:
            return reply.status, reply.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


def get_json(url: str) -> Any:
    status, body = get(url)
    assert status == 200, body
    return json.loads(body)


def test_pages_and_their_json_mirror(served: Served) -> None:
    overview = get_json(f"{served.url}/api/overview")
    rows = {row["module"]: row for row in overview["modules"]}
    assert set(rows) == {"nightly_sales", "hourly_orders", "weekly_report"}
    sales = rows["nightly_sales"]
    assert (sales["health"], sales["healthy"], sales["sync"]) == ("failing", False, "error")
    assert f"sales.yaml:{BROKEN_LINE}" in sales["error"]
    assert rows["hourly_orders"]["health"] == "too_long"
    assert overview["unhealthy"] == 2 and overview["rejected_files"] == 1

    status, html = get(f"{served.url}/")
    assert status == 200 and 'class="unhealthy" data-module="nightly_sales"' in html
    assert "<script" not in html and "http" not in html.split("<body>", 1)[0].replace('charset="utf-8"', "")

    module = get_json(f"{served.url}/api/modules/nightly_sales")
    assert [t["task_key"] for t in module["graph"]["tasks"]] == [
        "sales_extract",
        "sales_publish",
        "sales_report",
    ]
    assert module["runs"][0]["error"] == served.failing_run_error
    assert any(f"sales.yaml:{BROKEN_LINE}" in e for e in module["module"]["rejections"])
    status, html = get(f"{served.url}/modules/nightly_sales")
    assert status == 200 and html.count('<g class="task"') == 3 and "cell 3: KeyError" in html

    assert list(get_json(f"{served.url}/api/rejected")["rejected_files"]) == ["sales.yaml"]
    assert get_json(f"{served.url}/api/monitor")["monitor"]["holder"].startswith("monitor@")
    for page in ("/rejected", "/monitor"):
        assert get(served.url + page)[0] == 200


def test_filters_and_unknown_modules(served: Served) -> None:
    names = lambda query: [r["module"] for r in get_json(f"{served.url}/api/overview?{query}")["modules"]]  # noqa: E731
    assert names("q=ORDERS") == ["hourly_orders"]
    assert names("health=failing") == ["nightly_sales"]
    assert names("health=unhealthy") == ["hourly_orders", "nightly_sales"]
    rows = get_json(f"{served.url}/api/overview")["modules"]
    assert names("sync=synced") == ["hourly_orders"], rows
    assert get(f"{served.url}/modules/nope")[0] == 404
    assert get(f"{served.url}/api/modules/nope")[0] == 404


def test_a_changed_row_moves_its_module_and_shows_as_its_pending_diff(served: Served) -> None:
    """A load of an edited file writes one control row: the next overview shows that module out
    of sync (and only it), and its page shows what an apply would change, field by field,
    compared with the live job as `plan` compares it."""
    before = {r["module"]: r for r in get_json(f"{served.url}/api/overview")["modules"]}
    assert before["hourly_orders"]["sync"] == "synced"
    pending = get_json(f"{served.url}/api/modules/hourly_orders")["pending"]
    assert [(c["action"], c["source"], c["diff"]) for c in pending["changes"]] == [("noop", "live job", [])]

    tables = open_tables(served.ctl)
    (row,) = [r for r in tables.control.read_all() if r["source_id"] == "orders_silver"]
    config = json.loads(row["transformation_config"])
    config["notebook_path"] = "/Workspace/Shared/orders_silver_v2"
    edited = {k: v for k, v in row.items() if k != "created_at"}
    edited["transformation_config"] = json.dumps(config)
    # Written when the fleet's (fake) clock reads now: after the last apply, as a real load is.
    edited["updated_at"] = datetime.fromtimestamp(served.clock.now() + 1, timezone.utc)
    tables.control.merge([edited])

    after = {r["module"]: r for r in get_json(f"{served.url}/api/overview")["modules"]}
    assert (after["hourly_orders"]["sync"], after["hourly_orders"]["lag"]) == ("out of sync", True)
    assert {m: r for m, r in after.items() if m != "hourly_orders"} == {
        m: r for m, r in before.items() if m != "hourly_orders"
    }
    page = get_json(f"{served.url}/api/modules/hourly_orders")
    (change,) = page["pending"]["changes"]
    line = '~ tasks[orders_silver].notebook_task.notebook_path: "/Workspace/Shared/orders_silver" -> "/Workspace/Shared/orders_silver_v2"'
    assert (change["action"], change["reason"], change["source"]) == (
        "update",
        "metadata changed",
        "live job",
    )
    assert change["diff"] == [line]
    assert change["fields"] == [
        {
            "path": "tasks[orders_silver].notebook_task.notebook_path",
            "desired": "/Workspace/Shared/orders_silver_v2",
            "live": "/Workspace/Shared/orders_silver",
        }
    ]
    status, html = get(f"{served.url}/modules/hourly_orders")
    assert status == 200 and 'data-action="update"' in html
    assert "tasks[orders_silver].notebook_task.notebook_path" in html and "orders_silver_v2" in html


def test_a_sync_manual_module_with_a_held_change_is_manual_pending(served: Served) -> None:
    """The monitor held the edit of a sync: manual module: the overview says manual pending, the
    module page shows the diff the monitor's plan recorded, in the HTML and the JSON."""
    rows = {r["module"]: r for r in get_json(f"{served.url}/api/overview?sync=manual+pending")["modules"]}
    assert list(rows) == ["weekly_report"]
    page = get_json(f"{served.url}/api/modules/weekly_report")
    (change,) = page["pending"]["changes"]
    old, new = REPORTS_EDIT
    assert (change["action"], change["source"]) == ("update", "recorded")
    assert change["diff"] == [f'~ tasks[weekly_summary].notebook_task.notebook_path: "{old}" -> "{new}"']
    assert change["reason"] == "metadata changed" and change["detected_at"]
    assert change["hint"] == "sync: manual: pending until `apply --module weekly_report`"
    status, html = get(f"{served.url}/modules/weekly_report")
    assert (
        status == 200
        and "manual pending" in html
        and "tasks[weekly_summary].notebook_task.notebook_path" in html
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_read_only_by_construction(served: Served, method: str) -> None:
    request = urllib.request.Request(f"{served.url}/api/overview", data=b"{}", method=method)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 405
