"""The workspace path at scale, against the Databricks CLI's own fake workspace (``fakews``).

    python benchmarks/bench_workspace.py [--jobs 135,2940] [--latency-ms 100] [--no-dab] [--stand-ins fakews,emulator] [--write-docs]

Each step runs whole processes as a user does, against one ``fakews`` process whose answers are
delayed by ``--latency-ms`` (``FAKEWS_LATENCY_MS``, a workspace's round trip). Requests are
counted from the fake's own request log, so the figures say what a workspace would see:

1. first ``apply --target workspace`` of the examples renamed into N jobs;
2. the same apply again (nothing changed): zero job writes, ``jobs/list`` pages;
3. one source row changed (``timeout_seconds`` of one module), then apply: one job write;
4. ``monitor --once`` (a full resync) with nothing changed;
5. a running monitor (check interval 2 s) whose row changes 1 s into its first full resync: the
   time from the change until the fake sees that job's write;
6. ``databricks bundle deploy`` (direct engine, the real CLI) of ``export-bundle`` output of the
   same jobs into a second, empty workspace of the same fake: first deploy, no change, one
   change.

Our steps also run against the project's emulator with the same latency (``--stand-ins``):
its ``jobs/list`` pages in constant time, as the service's do, while the fake's costs grow with
every job in the workspace (the figure each size prints).

Merges its figures into ``benchmarks/results/bench_workspace.json`` (size by size, stand-in by
stand-in: a long size need not run again to measure a short one) and, with ``--write-docs``, its section of
docs/BENCHMARKS.md. Not part of the test run: it needs ``../shared/tools`` (or
``$LJM_SHARED_TOOLS``) and takes minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.docs_section import replace_section  # noqa: E402
from benchmarks.generate import generate  # noqa: E402

SECTION_START = "<!-- bench_workspace:start -->"
SECTION_END = "<!-- bench_workspace:end -->"
JOBS_PER_COPY = 5  # active modules (jobs) in one copy of examples/metadata_examples.yaml
CHECK_INTERVAL_S = 2.0
JOB_WRITES = {"jobs/create", "jobs/reset", "jobs/update", "jobs/delete"}


def tools_dir() -> Path:
    return Path(os.environ.get("LJM_SHARED_TOOLS", REPO.parent / "shared" / "tools"))


@dataclass
class FakeWorkspace:
    """One ``fakews`` process and its request log."""

    folder: Path
    latency_ms: int
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    _entries: list[dict[str, Any]] = field(default_factory=list)
    _read_to: int = 0

    @property
    def log_path(self) -> Path:
        return self.folder / "fakews.jsonl"

    def start(self) -> None:
        port_file = self.folder / "fakews.url"
        env = {**os.environ, "FAKEWS_LATENCY_MS": str(self.latency_ms)}
        self.process = subprocess.Popen(
            [str(tools_dir() / "fakews"), str(port_file), str(self.log_path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):  # start-up only: the fake writes its URL once it listens
            if port_file.exists() and port_file.read_text().strip():
                self.url = port_file.read_text().strip()
                return
            time.sleep(0.05)
        raise RuntimeError("fakews did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def entries(self) -> list[dict[str, Any]]:
        """Every request logged so far. Read on from where the last call stopped: the log holds
        every reply (a listing page is 100 jobs), and reading it whole every 50 ms while a step
        runs would take a core from the processes being measured."""
        if not self.log_path.exists():
            return []
        with self.log_path.open("rb") as log:
            log.seek(self._read_to)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
        self._read_to += len(complete)
        self._entries += [json.loads(line) for line in complete.splitlines() if line.strip()]
        return list(self._entries)


@dataclass
class EmulatedWorkspace:
    """The project's Jobs API emulator (``tests/emulator``) in this process, answering after
    ``latency_ms``: a stand-in whose ``jobs/list`` pages in constant time, as the service's do
    (the fake's shim lists every job of the workspace for each page)."""

    folder: Path
    latency_ms: int
    url: str = ""
    emulator: Any = None

    def start(self) -> None:
        from tests.emulator.server import JobsEmulator

        self.emulator = JobsEmulator(latency_ms=self.latency_ms).start()
        self.url = self.emulator.url

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()

    def entries(self) -> list[dict[str, Any]]:
        if self.emulator is None:
            return []
        return [
            {"path": r.path, "method": r.method, "t": r.at_ms, "query": r.query}
            for r in self.emulator.requests
        ]


def _endpoint(entry: dict[str, Any]) -> str:
    path = str(entry["path"])
    for prefix in ("/api/2.2/", "/api/2.1/", "/api/2.0/"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
    if path.startswith("permissions/jobs/"):
        return f"permissions {entry['method']}"
    return path


@dataclass
class StepResult:
    name: str
    wall_s: float
    requests: int
    job_writes: int
    other_writes: int
    list_pages: int
    by_endpoint: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def count(entries: list[dict[str, Any]], name: str, wall_s: float, note: str = "") -> StepResult:
    by_endpoint = Counter(_endpoint(e) for e in entries)
    job_writes = sum(n for k, n in by_endpoint.items() if k in JOB_WRITES)
    reads = {"jobs/list", "jobs/get", "permissions GET", ".well-known/databricks-config"}
    other_writes = sum(
        n
        for k, n in by_endpoint.items()
        if k not in JOB_WRITES and k not in reads and not k.startswith("preview/scim")
    )
    return StepResult(
        name,
        round(wall_s, 2),
        len(entries),
        job_writes,
        other_writes,
        by_endpoint.get("jobs/list", 0),
        dict(sorted(by_endpoint.items())),
        note,
    )


class Bench:
    """One size: a folder with the metadata, the control table and two workspaces of one fake."""

    def __init__(self, jobs: int, latency_ms: int, root: Path, *, emulated: bool = False):
        self.jobs = jobs
        self.root = root
        self.fake: FakeWorkspace | EmulatedWorkspace = (
            EmulatedWorkspace(root, latency_ms) if emulated else FakeWorkspace(root, latency_ms)
        )
        self.ours_token = "dbapi0" + secrets.token_hex(6)
        self.dab_token = "dbapi0" + secrets.token_hex(6)
        self.home = root / "home"
        self.home.mkdir()
        copies = max(1, jobs // JOBS_PER_COPY)
        sources_per_copy = _sources_per_copy()
        self.files = generate(root / "meta", copies * sources_per_copy)
        self.changed_module = "sales_daily_c00000"

    def env(self, token: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
        env.update(
            HOME=str(self.home),
            PYTHONPATH=str(REPO),
            DATABRICKS_HOST=self.fake.url,
            DATABRICKS_TOKEN=token,
            LAKEFLOW_JOB_META_CACHE_DIR="off",
        )
        return env

    def cli(self, *argv: str, token: str | None = None, check: bool = True) -> float:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "lakeflow_job_meta", *argv],
            cwd=self.root,
            env=self.env(token or self.ours_token),
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        return wall

    def measured(self, name: str, token: str, action: Any, note: str = "") -> StepResult:
        before = len(self.fake.entries())
        wall = action()
        # Steps run one at a time, so every request the fake logs meanwhile is this step's.
        result = count(self.fake.entries()[before:], name, wall, note)
        print(
            f"  {name}: {result.wall_s:.2f} s, {result.requests} requests, "
            f"{result.job_writes} job writes, {result.list_pages} jobs/list",
            flush=True,
        )
        return result

    def change_one_row(self) -> None:
        path = self.files[0]
        text = path.read_text()
        new = text.replace("timeout_seconds: 7200", "timeout_seconds: 7201", 1)
        if new == text:
            new = text.replace("timeout_seconds: 7201", "timeout_seconds: 7200", 1)
        path.write_text(new)
        self.cli("load", "meta", "--control-table", "./ctl")

    def listing_page_seconds(self) -> float:
        """One ``jobs/list`` page (100 jobs, tasks expanded) as the fake answers it now: the
        fake lists every job of the workspace for each page, so this grows with the jobs (the
        service pages in constant time). Read directly, and left out of every step's counts."""
        from urllib.request import Request, urlopen

        request = Request(
            f"{self.fake.url}/api/2.2/jobs/list?limit=100&expand_tasks=true",
            headers={"Authorization": f"Bearer {self.ours_token}"},
        )
        started = time.perf_counter()
        with urlopen(request, timeout=600) as reply:
            reply.read()
        return round(time.perf_counter() - started, 2)

    # -- ours ----------------------------------------------------------------------------------
    def ours(self) -> list[StepResult]:
        apply = ("apply", "--control-table", "./ctl", "--target", "workspace")
        token = self.ours_token
        self.cli("load", "meta", "--control-table", "./ctl")
        steps = [
            self.measured("first apply", token, lambda: self.cli(*apply)),
            self.measured("no-change apply", token, lambda: self.cli(*apply)),
        ]
        self.change_one_row()
        steps.append(self.measured("one row changed, apply", token, lambda: self.cli(*apply)))
        monitor_once = ("monitor", "--control-table", "./ctl", "--target", "workspace", "--once")
        steps.append(self.measured("monitor full resync (--once)", token, lambda: self.cli(*monitor_once)))
        steps.append(self.change_during_resync())
        return steps

    def change_during_resync(self) -> StepResult:
        """A monitor whose first cycle (a full resync) is under way when a row changes."""
        before = len(self.fake.entries())
        argv = [
            sys.executable, "-m", "lakeflow_job_meta", "monitor", "--control-table", "./ctl",
            "--target", "workspace", "--check-interval-seconds", str(CHECK_INTERVAL_S),
        ]  # fmt: skip
        monitor = subprocess.Popen(
            argv, cwd=self.root, env=self.env(self.ours_token),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while not any(_endpoint(e).startswith("jobs/") for e in self.fake.entries()[before:]):
                time.sleep(0.05)
            time.sleep(1.0)
            # From the start of the change's own process: its commit lands inside it, and the
            # monitor may write before that process has even exited (so this is an upper bound).
            changed_at_ms = time.time() * 1000
            self.change_one_row()
            written_ms = None
            deadline = time.monotonic() + 600
            while written_ms is None and time.monotonic() < deadline:
                for entry in self.fake.entries()[before:]:
                    # The monitor is idle but for this change: its first job write after the
                    # change started is the change's (the edited row may be any module's).
                    if _endpoint(entry) in JOB_WRITES and entry["t"] >= changed_at_ms:
                        written_ms = entry["t"]
                        break
                time.sleep(0.05)
        finally:
            monitor.send_signal(signal.SIGTERM)
            try:
                monitor.wait(timeout=60)
            except subprocess.TimeoutExpired:
                monitor.kill()
        entries = self.fake.entries()[before:]
        wall = (written_ms - changed_at_ms) / 1000 if written_ms is not None else float("inf")
        result = count(entries, "change during a full resync -> job written", wall,
                       note=f"check interval {CHECK_INTERVAL_S:g} s")  # fmt: skip
        print(f"  {result.name}: {wall:.2f} s", flush=True)
        return result

    # -- databricks bundle deploy -------------------------------------------------------------
    def dab(self) -> list[StepResult]:
        cli = tools_dir() / "databricks"
        bundle = self.root / "bundle"
        token = self.dab_token

        def export() -> None:
            self.cli("export-bundle", "--control-table", "./ctl", "--output", str(bundle))

        def deploy() -> float:
            env = {**self.env(token), "DATABRICKS_BUNDLE_ENGINE": "direct"}
            started = time.perf_counter()
            proc = subprocess.run(
                [str(cli), "bundle", "deploy", "--auto-approve"], cwd=bundle, env=env,
                capture_output=True, text=True,
            )  # fmt: skip
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"bundle deploy exited {proc.returncode}:\n{proc.stderr[-3000:]}")
            return wall

        export()
        steps = [
            self.measured("first apply", token, deploy),
            self.measured("no-change apply", token, deploy),
        ]
        self.change_one_row()
        export()
        steps.append(self.measured("one row changed, apply", token, deploy))
        return steps


def _sources_per_copy() -> int:
    text = (REPO / "examples" / "metadata_examples.yaml").read_text()
    return text.count("source_id:")


def run_emulated(jobs: int, latency_ms: int) -> list[dict[str, Any]]:
    """Our steps against the emulator: the same metadata, a constant-time listing."""
    print(f"{jobs} jobs, emulator", flush=True)
    root = Path(tempfile.mkdtemp(prefix=f"ljm-bench-emu-{jobs}-"))
    bench = Bench(jobs, latency_ms, root, emulated=True)
    bench.fake.start()
    try:
        return [s.as_dict() for s in bench.ours()]
    finally:
        bench.fake.stop()
        shutil.rmtree(root, ignore_errors=True)


def run(sizes: list[int], latency_ms: int, stand_ins: set[str], with_dab: bool) -> dict[str, Any]:
    """Each size against the stand-ins asked for; a size's entry keeps the stand-ins not run."""
    report: dict[str, Any] = {"sizes": {}}
    for jobs in sizes:
        entry: dict[str, Any] = {}
        if "fakews" in stand_ins:
            print(f"{jobs} jobs", flush=True)
            root = Path(tempfile.mkdtemp(prefix=f"ljm-bench-ws-{jobs}-"))
            bench = Bench(jobs, latency_ms, root)
            bench.fake.start()
            try:
                entry["ours"] = [s.as_dict() for s in bench.ours()]
                entry["listing_page_s"] = bench.listing_page_seconds()
                print(
                    f"  one jobs/list page as the fake answers it: {entry['listing_page_s']:.2f} s",
                    flush=True,
                )
                entry["dab"] = [s.as_dict() for s in bench.dab()] if with_dab else []
            finally:
                bench.fake.stop()
                shutil.rmtree(root, ignore_errors=True)
        if "emulator" in stand_ins:
            entry["ours_emulator"] = run_emulated(jobs, latency_ms)
        entry["machine"] = _machine()
        report["sizes"][str(jobs)] = entry
    return report


def _machine() -> str:
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}{load}"


def merged(old: dict[str, Any], new: dict[str, Any], latency_ms: int) -> dict[str, Any]:
    """The new figures over the recorded ones, size by size and stand-in by stand-in: a long
    size can be measured once and a short one again. Figures of another latency are dropped."""
    sizes = dict(old.get("sizes", {})) if old.get("latency_ms") == latency_ms else {}
    for jobs, entry in new["sizes"].items():
        sizes[jobs] = {**sizes.get(jobs, {}), **entry}
    ordered = dict(sorted(sizes.items(), key=lambda item: int(item[0])))
    return {"latency_ms": latency_ms, "sizes": ordered}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        SECTION_START,
        "## The workspace path against the fake workspace (`bench_workspace.py`)",
        "",
        f"`python benchmarks/bench_workspace.py --write-docs`; every answer of `fakews` (and of the "
        f"emulator) delayed {report['latency_ms']} ms. Whole processes; requests counted in the stand-in's log.",
        "",
    ]
    for jobs, both in report["sizes"].items():
        dab = {s["name"]: s for s in both.get("dab", [])}
        emulated = {s["name"]: s for s in both.get("ours_emulator", [])}
        steps = both.get("ours") or both.get("ours_emulator", [])
        made = steps[0]["job_writes"] if steps else 0
        lines += [f"### {jobs} jobs ({made} made by the first apply of the generated metadata)", ""]
        if "machine" in both:
            lines += [f"Measured on {both['machine']} at the start.", ""]
        lines += [
            "| step | ours: wall, requests, job writes, `jobs/list` | `databricks bundle deploy` (direct): wall, requests | speed-up | ours against the emulator: wall, requests, job writes, `jobs/list` |",
            "|---|---|---|---|---|",
        ]
        ours = {s["name"]: s for s in both.get("ours", [])}
        for name in [s["name"] for s in steps]:
            mine, other, emu = ours.get(name), dab.get(name), emulated.get(name)
            theirs = f"{other['wall_s']:.2f} s, {other['requests']}" if other else ""
            if not other and ("monitor" in name or "resync" in name):
                theirs = "(no monitor)"
            speedup = (
                f"{other['wall_s'] / mine['wall_s']:.1f}x"
                if mine and other and mine["wall_s"] and math.isfinite(mine["wall_s"])
                else ""
            )
            lines.append(f"| {name} | {_cell(mine)} | {theirs} | {speedup} | {_cell(emu)} |")
        lines.append("")
        if "listing_page_s" in both:
            lines += [
                f"One `jobs/list` page (100 jobs, tasks expanded) took the fake {both['listing_page_s']:.2f} s "
                f"at this size, {report['latency_ms']} ms of it the injected latency.",
                "",
            ]
    lines.append(SECTION_END)
    return "\n".join(lines)


def _cell(step: dict[str, Any] | None) -> str:
    if step is None:
        return ""
    if step.get("requests") is None:  # recorded from a run's log: its wall time only
        return f"{step['wall_s']:.2f} s"
    return f"{step['wall_s']:.2f} s, {step['requests']}, {step['job_writes']}, {step['list_pages']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="135,2940")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--no-dab", action="store_true", help="skip databricks bundle deploy")
    parser.add_argument(
        "--stand-ins",
        default="fakews,emulator",
        help="fakews (with databricks bundle deploy beside it) and/or emulator (ours only)",
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if not (tools_dir() / "fakews").exists():
        sys.exit(f"no fakews in {tools_dir()} (set LJM_SHARED_TOOLS)")
    stand_ins = set(args.stand_ins.split(","))
    report = run([int(n) for n in args.jobs.split(",")], args.latency_ms, stand_ins, not args.no_dab)
    out = REPO / "benchmarks" / "results" / "bench_workspace.json"
    old = json.loads(out.read_text()) if out.exists() else {}
    report = merged(old, report, args.latency_ms)
    out.write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    print(text)
    if args.write_docs:
        replace_section(text, SECTION_START, SECTION_END)


if __name__ == "__main__":
    main()
