"""The status page over real local tables, through real HTTP: every page answers, the JSON API
mirrors it, filters work, a failing module is marked and its rejected edit names file:line,
and nothing but GET is accepted."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.run_world import BROKEN_LINE
from tests.web.conftest import Served


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
    assert set(rows) == {"nightly_sales", "hourly_orders"}
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


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_read_only_by_construction(served: Served, method: str) -> None:
    request = urllib.request.Request(f"{served.url}/api/overview", data=b"{}", method=method)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 405
