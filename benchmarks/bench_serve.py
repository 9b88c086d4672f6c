"""The status page at fleet size: ``serve``'s overview for about 3,000 modules must answer in
under 300 ms (issue 18), the first request after a change included. Not a timed test: a
benchmark, run by hand or in a benchmark lane.

    python benchmarks/bench_serve.py [--sources 8500] [--json OUT] [--write-docs]

The fleet is ``benchmarks/generate.py``'s metadata (8,500 sources: 500 copies of 6 modules, so
3,000 modules), loaded with the CLI, then given what a monitor applying it to a workspace
records: a tracking row and a history row per module, and five runs per module in the runs
table (job ids are invented: no workspace is contacted). The real server (uvicorn) is started on
a loopback port and ``GET /`` is timed over HTTP:

- the first request, sent as soon as the server listens (it waits for the fleet read the server
  starts in the background), and the time from starting the app until that fleet read is done;
- warm requests (nothing changed) and filtered ones;
- the first request after one control-table row changed (what a ``load`` of one edited file
  writes), after one tracking row changed (what an apply of one module writes), after a runs
  table write (the monitor recording a run) and after a state-table write (a lease renewal).

Each change is checked on the overview's JSON afterwards (the module's state moved), so a fast
page that shows stale states fails the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.docs_section import replace_section  # noqa: E402
from benchmarks.generate import generate  # noqa: E402

TARGET_MS = 300.0
WARM_REQUESTS = 20
CHANGES = 5  # changes of each kind, each followed by one timed request
HOST = "https://example.cloud.databricks.com"
TARGET = f"workspace:{HOST}"
SECTION_START = "<!-- bench_serve:start -->"
SECTION_END = "<!-- bench_serve:end -->"


def _cli(*argv: str, cwd: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "lakeflow_job_meta", *argv],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def _record_apply_and_runs(table: str) -> tuple[list[str], int]:
    """What a monitor applying the fleet to a workspace records: one tracking row and one
    history row per active module, and five finished runs per module (one failed in ten).
    Returns the modules (in job id order) and the number of runs."""
    from lakeflow_job_meta.storage import open_tables
    from lakeflow_job_meta.storage.rows import HistoryRow, TrackingRow

    tables = open_tables(table)
    tables.runs.create_or_migrate()
    control = tables.control.read_all()
    version = tables.control.version()
    modules = sorted({str(r["module_name"]) for r in control if r.get("is_active") is not False})
    now = datetime.now(timezone.utc)  # applied after the load
    tracking, history, runs = [], [], []
    for index, module in enumerate(modules):
        job_id = index + 1
        tracking.append(
            TrackingRow(
                target=TARGET,
                module_name=module,
                job_id=job_id,
                job_name=module,
                spec_hash=f"h{index}",
                hash_version=1,
                applied_version=version,
                status="ok",
            ).as_row()
        )
        history.append(
            HistoryRow(
                run_id="bench",
                target=TARGET,
                module_name=module,
                action="create",
                job_id=job_id,
                new_hash=f"h{index}",
                started_at=now,
                writes=1,
            ).as_row()
        )
        for n in range(5):
            started = now - timedelta(hours=n + 1)
            runs.append(_run(index * 10 + n + 1, job_id, module, started, failed=n == 0 and index % 10 == 0))
    tables.jobs.merge(tracking)
    tables.history.append(history)
    tables.runs.merge(runs)
    return modules, len(runs)


def _run(run_id: int, job_id: int, module: str, started: datetime, *, failed: bool) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "job_id": job_id,
        "module_name": module,
        "target": TARGET,
        "trigger": "PERIODIC",
        "life_cycle_state": "TERMINATED",
        "result_state": "FAILED" if failed else "SUCCESS",
        "started_at": started,
        "ended_at": started + timedelta(seconds=60),
        "duration_seconds": 60.0,
        "error": "cell 3: KeyError" if failed else None,
        "run_page_url": f"{HOST}/jobs/{job_id}/runs/{run_id}",
    }


class Changes:
    """One write of each kind the page must notice, on the fleet's tables."""

    def __init__(self, table: str, modules: list[str]):
        from lakeflow_job_meta.storage import control_table_id, open_tables
        from lakeflow_job_meta.storage.state_store import StateStore

        self.tables = open_tables(table)
        self.state = StateStore(self.tables.state, control_table_id(table), time.time)
        self.modules = modules
        self.rows = {}
        for row in self.tables.control.read_all():
            self.rows.setdefault(str(row["module_name"]), row)

    def control_row(self, n: int) -> str:
        """A ``load`` of an edited file: one source row of one module changed (audit columns
        filled by the write), so the module's metadata is newer than its last apply."""
        module = self.modules[100 + n]
        row = {k: v for k, v in self.rows[module].items() if k not in ("created_at", "updated_at")}
        config = json.loads(row["transformation_config"] or "{}")
        config["description"] = f"edited by bench_serve ({n})"
        row["transformation_config"] = json.dumps(config)
        row["updated_by"] = "bench"
        self.tables.control.merge([row])
        return module

    def tracking_row(self, n: int) -> str:
        """An apply of one module that failed: its tracking row carries the error."""
        module = self.modules[200 + n]
        (row,) = [r for r in self.tables.jobs.read_all() if r["module_name"] == module]
        row = {k: v for k, v in row.items() if k != "updated_at"}
        row["last_error"] = f"bench: jobs/reset failed ({n})"
        self.tables.jobs.merge([row])
        return module

    def runs_row(self, n: int) -> str:
        """The monitor recording a failed run of one module."""
        index = 300 + n
        module = self.modules[index]
        started = datetime.now(timezone.utc) - timedelta(minutes=2)
        self.tables.runs.merge([_run(10_000_000 + n, index + 1, module, started, failed=True)])
        return module

    def state_row(self, n: int) -> None:
        self.state.put("bench_serve", {"n": n})


def _get_ms(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url) as reply:
        reply.read()
    return (time.perf_counter() - started) * 1000


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url) as reply:
        return json.loads(reply.read())


def _timed_changes(
    url: str, change: Callable[[int], str | None], check: Callable[[dict[str, Any]], bool] | None
) -> list[float]:
    """Each change, then one timed request of the overview; ``check`` must hold for the changed
    module's overview row afterwards (the state shown moved)."""
    times = []
    for n in range(CHANGES):
        module = change(n)
        times.append(_get_ms(url))
        if check is not None and module is not None:
            (row,) = _get_json(f"{url}api/overview?q={module}")["modules"]
            if not check(row):
                raise AssertionError(f"the overview did not show the change of {module}: {row}")
    return times


def _stats(times: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def run(sources: int, root: Path) -> dict[str, Any]:
    import uvicorn

    from lakeflow_job_meta.web.serve import create_app

    files = [str(p) for p in generate(root / "meta", sources)]
    table = str(root / "ctl")
    _cli("load", *files, "--control-table", table, cwd=root)
    modules, runs = _record_apply_and_runs(table)
    changes = Changes(table, modules)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    started = time.perf_counter()
    app = create_app(table)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    try:
        first = _get_ms(url)
        ready = (time.perf_counter() - started) * 1000
        warm = [_get_ms(url) for _ in range(WARM_REQUESTS)]
        filtered = [_get_ms(url + "?health=failing") for _ in range(WARM_REQUESTS)]
        overview = _get_json(url + "api/overview")
        if overview["counts"].get("synced") != len(modules):
            raise AssertionError(f"the fleet should read as synced: {overview['counts']}")
        after_control = _timed_changes(url, changes.control_row, lambda r: r["sync"] == "out of sync")
        after_tracking = _timed_changes(url, changes.tracking_row, lambda r: r["sync"] == "error")
        after_runs = _timed_changes(url, changes.runs_row, lambda r: r["health"] == "failing")
        after_state = _timed_changes(url, changes.state_row, None)
        module_page = [_get_ms(f"{url}modules/{modules[n]}") for n in range(CHANGES)]
    finally:
        server.should_exit = True
        thread.join()
    result: dict[str, Any] = {
        "sources": sources,
        "modules": overview["total"],
        "runs": runs,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "first_request_ms": round(first, 1),
        "app_start_to_first_answer_ms": round(ready, 1),
        "warm": _stats(warm),
        "filtered": _stats(filtered),
        "after_control_row_change": _stats(after_control),
        "after_tracking_row_change": _stats(after_tracking),
        "after_runs_write": _stats(after_runs),
        "after_state_write": _stats(after_state),
        "module_page_first": _stats(module_page),
        "target_ms": TARGET_MS,
    }
    checked = ("warm", "after_control_row_change", "after_tracking_row_change", "after_state_write")
    result["ok"] = all(result[k]["max_ms"] < TARGET_MS for k in checked)
    return result


def docs_section(result: dict[str, Any]) -> str:
    def row(label: str, key: str) -> str:
        figures = result[key]
        return f"| {label} | {figures['median_ms']:.0f} ms | {figures['max_ms']:.0f} ms |"

    return "\n".join(
        [
            SECTION_START,
            "## Status page (`benchmarks/bench_serve.py`)",
            "",
            f"`serve`'s overview at {result['modules']:,} modules ({result['sources']:,} sources from",
            "`benchmarks/generate.py`, loaded, with the tracking and history rows of a workspace apply and",
            f"five runs per module: {result['runs']:,} rows in the runs table), timed over HTTP against the",
            "real server (uvicorn) on loopback; target under 300 ms, the first request after a change",
            f"included. Measured on this {result['cpus']}-core machine shared with other work",
            "(`benchmarks/results/bench_serve.json`):",
            "",
            "```bash",
            "python benchmarks/bench_serve.py --write-docs",
            "```",
            "",
            "| request | median | max |",
            "|---|---|---|",
            f"| first request, sent as the server starts (waits for the fleet read begun at start) | "
            f"{result['first_request_ms']:.0f} ms | |",
            row("warm (nothing changed)", "warm"),
            row("filtered (`?health=failing`)", "filtered"),
            row("first request after one control-table row changed", "after_control_row_change"),
            row("first request after one tracking row changed", "after_tracking_row_change"),
            row("first request after a runs-table write", "after_runs_write"),
            row("first request after a state-table write (lease renewal)", "after_state_write"),
            row("a module page, first view", "module_page_first"),
            "",
            SECTION_END,
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=8500)
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "bench_serve.json"))
    parser.add_argument("--write-docs", action="store_true", help="rewrite the section of docs/BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.sources, Path(tmp))
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.write_docs:
        replace_section(docs_section(result), SECTION_START, SECTION_END)
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
