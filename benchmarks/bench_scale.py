"""Platform-size metadata: validate, load, apply, plan and the monitor at 1,000 / 10,000 /
100,000 sources, plus API economy and a rate-limited apply against the Jobs API emulator.

    python benchmarks/bench_scale.py [--sizes 1000,10000,100000] [--write-docs] [--json OUT]

Metadata is ``examples/metadata_examples.yaml`` renamed many times into 11 files
(``benchmarks/generate.py``). Whole-process steps run the CLI as a user does
(``python -m lakeflow_job_meta ...``) and report wall time and the process's peak RSS; in-process
steps time the engine in this process. Writes ``benchmarks/results/bench_scale.json`` and, with
``--write-docs``, replaces its section of docs/BENCHMARKS.md. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.docs_section import replace_section  # noqa: E402
from benchmarks.generate import generate  # noqa: E402
from lakeflow_job_meta.engine.desired_cache import CACHE_DIR_VARIABLE  # noqa: E402

SECTION_START = "<!-- bench_scale:start -->"
SECTION_END = "<!-- bench_scale:end -->"
TARGETS_10K = {"validate": 3.0, "load": 5.0, "first_apply": 10.0, "plan": 2.0}
TARGET_PLAN_100K, TARGET_RSS_100K_MB, TARGET_INCREMENTAL_MS = 15.0, 300.0, 50.0


# Runs the CLI as ``python -m lakeflow_job_meta`` does and writes the process's own peak RSS
# (VmHWM, kB) at exit. The rusage of a child cannot give it: a child started by vfork or fork
# inherits this benchmark process's high-water mark, which exec does not reset.
_RUN_CLI = """\
import atexit, os, runpy, sys
def _peak():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_PEAK_RSS_FILE"], "w") as out:
        out.write(peak)
atexit.register(_peak)
sys.argv = ["lakeflow_job_meta", *sys.argv[1:]]
runpy.run_module("lakeflow_job_meta", run_name="__main__", alter_sys=True)
"""


def cli(*argv: str, cwd: Path, cache: str) -> dict[str, Any]:
    """Run ``python -m lakeflow_job_meta ARGV`` as a user would: wall seconds, CPU seconds and
    peak RSS (MB). ``cache`` is the desired-state cache folder (fresh per run, never the user's),
    or ``off``."""
    peak_file = cwd / ".peak_rss_kb"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        CACHE_DIR_VARIABLE: cache,
        "BENCH_PEAK_RSS_FILE": str(peak_file),
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_CLI, *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{output[-2000:]}")
    return {
        "seconds": round(seconds, 3),
        # CPU time: about the wall time on an idle machine (a shared machine inflates the wall
        # time, not this; only delta-rs uses a second thread).
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "rss_mb": round(int(peak_file.read_text()) / 1024, 1),
    }


def whole_process(size: int, root: Path) -> dict[str, Any]:
    folder = root / f"meta{size}"
    files = [str(p) for p in generate(folder, size)]
    table = str(root / f"ctl{size}")  # spelled as in-process steps spell it (it reaches job parameters)
    bundle = f"bundle:{root / f'bundle{size}'}"
    cache = str(root / f"cache{size}")
    return {
        "files": len(files),
        "validate": cli("validate", *files, cwd=root, cache=cache),
        "load": cli("load", *files, "--control-table", table, cwd=root, cache=cache),
        "first_apply": cli("apply", "--control-table", table, "--target", bundle, cwd=root, cache=cache),
        # After an apply, as a user runs it: the desired state comes from the cache.
        "plan": cli("plan", "--control-table", table, "--target", bundle, cwd=root, cache=cache),
        # Without the cache: every row read, parsed, validated and compiled.
        "plan_no_cache": cli("plan", "--control-table", table, "--target", bundle, cwd=root, cache="off"),
    }


def in_process(size: int, root: Path) -> dict[str, Any]:
    """No-change plan in this process (cold, then warm: the row memo), the incremental plan
    after one row change, and monitor cycles on the bundle target. The desired-state cache is
    off here: these figures are the work of computing the state from the tables."""
    from lakeflow_job_meta import JobOrchestrator, MetadataMonitor
    from lakeflow_job_meta.clock import SystemClock

    table = str(root / f"ctl{size}")
    target = f"bundle:{root / f'bundle{size}'}"
    orchestrator = JobOrchestrator(table, target=target)
    timings: dict[str, Any] = {}
    for label in ("plan_cold_s", "plan_warm_s"):
        started = time.perf_counter()
        plan = orchestrator.plan()
        timings[label] = round(time.perf_counter() - started, 3)
        assert all(c.action == "noop" for c in plan.changes), [
            (c.module, c.action) for c in plan.changes if c.action != "noop"
        ][:5]

    # One row changes: what the monitor's scoped path reads and compiles for it.
    rows = orchestrator.tables.control.read_all()
    row = next(r for r in rows if r["source_id"].startswith("clickstream_stream_c"))
    module = row["module_name"]
    config = json.loads(row["transformation_config"])
    config["base_parameters"] = {"load_mode": "batch"}
    orchestrator.tables.control.merge([{**row, "transformation_config": json.dumps(config)}])
    incremental = []
    for _ in range(5):
        started = time.perf_counter()
        desired = orchestrator._desired({module})  # the scoped read and compile of a reconcile
        incremental.append((time.perf_counter() - started) * 1000)
        assert module in desired.compiled and not desired.issues
    timings["incremental_plan_ms"] = round(statistics.median(incremental), 2)

    # Monitor on the bundle target: idle cycles, a row change, a dropped YAML file.
    volume = root / f"volume{size}"
    volume.mkdir(exist_ok=True)
    clock = SystemClock()
    monitor = MetadataMonitor(
        table,
        check_interval_seconds=30,
        volume_path=str(volume),
        orchestrator=JobOrchestrator(table, target=target, clock=clock),
        clock=clock,
    )
    first = monitor.check_and_update()
    assert first.error is None, first.summary()
    idle = []
    for _ in range(50):
        started = time.perf_counter()
        report = monitor.check_and_update()
        idle.append((time.perf_counter() - started) * 1000)
        assert report.idle, report.summary()
    timings["idle_cycle_ms"] = round(statistics.median(idle), 2)

    config["base_parameters"] = {"load_mode": "streaming_again"}
    started = time.perf_counter()
    orchestrator.tables.control.merge([{**row, "transformation_config": json.dumps(config)}])
    report = monitor.check_and_update()
    timings["row_change_to_write_s"] = round(time.perf_counter() - started, 3)
    assert report.run is not None and report.run.ok, report.summary()
    assert [r.module for r in report.run if r.action != "noop"] == [module], report.summary()

    name = f"dropped_{size}"
    text = (
        f"modules:\n  - module_name: {name}\n    sources:\n      - source_id: {name}_s1\n"
        "        source_type: notebook\n        execution_order: 1\n        transformation_config:\n"
        "          task_type: notebook\n          notebook_path: /Workspace/nb\n"
    )
    job_file = root / f"bundle{size}" / "resources" / f"{name}.job.yml"
    started = time.perf_counter()
    (volume / f"{name}.yaml").write_text(text)
    while not job_file.exists():
        monitor._volume_dirty = True
        monitor.check_and_update()
        if time.perf_counter() - started > 120:
            raise TimeoutError("the dropped file was not written")
    timings["yaml_drop_to_write_s"] = round(time.perf_counter() - started, 3)
    monitor.close()
    return timings


def loaded_table(root: Path, name: str, sources: int, files: int) -> str:
    """A control table (path) loaded with ``sources`` generated sources."""
    from lakeflow_job_meta import MetadataManager

    table = str(root / f"ctl_{name}")
    manager = MetadataManager(table)
    manager.ensure_exists()
    manager.load_files([str(p) for p in generate(root / name, sources, files=files)])
    return table


def api_economy(root: Path) -> dict[str, Any]:
    """Against the emulator (workspace target, real SDK over HTTP): writes per scenario."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    from lakeflow_job_meta import JobOrchestrator, MetadataMonitor
    from lakeflow_job_meta.clock import SystemClock
    from tests.emulator.server import JobsEmulator

    result: dict[str, Any] = {}
    table = loaded_table(root, "economy", 1000, files=2)
    with JobsEmulator() as emu:
        client = WorkspaceClient(config=Config(host=emu.url, token="t", retry_timeout_seconds=60))
        orchestrator = JobOrchestrator(table, client, target="workspace", clock=SystemClock())
        first = orchestrator.run_all_modules()
        assert first.ok
        creates = sum(1 for r in first if r.action == "create")
        result["first_apply"] = {"modules_changed": creates, "job_writes": emu.writes()}
        orchestrator.run_all_modules()  # settles the "created" rows (one list per new job)
        emu.reset_counters()
        again = orchestrator.run_all_modules()
        result["no_change_apply"] = {"modules_changed": 0, "job_writes": emu.writes()}
        assert again.ok
        rows = orchestrator.tables.control.read_all()
        row = next(r for r in rows if r["source_id"].startswith("clickstream_stream_c"))
        config = json.loads(row["transformation_config"])
        config["base_parameters"] = {"load_mode": "batch"}
        orchestrator.tables.control.merge([{**row, "transformation_config": json.dumps(config)}])
        monitor = MetadataMonitor(
            table, check_interval_seconds=30, orchestrator=orchestrator, clock=orchestrator.clock
        )
        monitor._processed = (
            orchestrator.tables.control.version() - 1,
            orchestrator.tables.modules.version(),
        )
        monitor._last_full = orchestrator.clock.monotonic()
        emu.reset_counters()
        changed = monitor.check_and_update()
        assert changed.run is not None and changed.run.ok, changed.summary()
        result["one_row_changed"] = {"modules_changed": 1, "job_writes": emu.writes()}
        emu.reset_counters()
        for _ in range(20):
            assert monitor.check_and_update().idle
        result["idle_monitor_20_cycles"] = {
            "modules_changed": 0,
            "requests": sum(emu.request_counts().values()),
        }
        monitor.close()
    result["rate_limited_apply"] = rate_limited(root)
    return result


def rate_limited(root: Path, per_second: int = 25) -> dict[str, Any]:
    """A first apply of 50 jobs against an emulator that answers 429 (Retry-After: 1) beyond
    ``per_second`` requests a second: the SDK waits as told, so no retry storm."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    from lakeflow_job_meta import JobOrchestrator
    from tests.emulator.server import JobsEmulator

    table = loaded_table(root, "limited", 170, files=1)
    with JobsEmulator() as emu:
        client = WorkspaceClient(config=Config(host=emu.url, token="t", retry_timeout_seconds=120))
        emu.faults.rate_limit(per_second, retry_after=1)
        started = time.perf_counter()
        result = JobOrchestrator(table, client, target="workspace").run_all_modules()
        seconds = time.perf_counter() - started
        assert result.ok, [r.error for r in result if not r.ok]
        stamps = [r for r in emu.requests]
        total = len(stamps)
        throttled = emu.faults.fired_count("429")
    return {
        "limit_per_second": per_second,
        "jobs": len(emu.jobs()),
        "requests": total,
        "throttled_429": throttled,
        "seconds": round(seconds, 2),
        "requests_per_second": round(total / seconds, 1),
        "admitted_per_second": round((total - throttled) / seconds, 1),
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        load = ""
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python {platform.python_version()}"
        f"{load} at start (the machine is shared)"
    )


def render(results: dict[str, Any]) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines = [
        SECTION_START,
        "## Scale (`benchmarks/bench_scale.py`)",
        "",
        f"Machine: {results['machine']}. Metadata: the examples renamed into 11 files (107 at 100,000 sources) "
        "(`benchmarks/generate.py`); 10,000 sources = 3,528 modules, 2,940 active jobs. Whole-process "
        "figures run the CLI (`python -m lakeflow_job_meta`) in a fresh process; RSS is that "
        "process's peak.",
        "",
        "| sources | step | wall | CPU | peak RSS | target (10k / 100k, on CPU time) | |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, data in sorted(results["sizes"].items(), key=lambda kv: int(kv[0])):
        n = int(size)
        for step in ("validate", "load", "first_apply", "plan", "plan_no_cache"):
            if step not in data:
                continue
            value = data[step]
            target, ok = "", None
            if n == 10_000 and step in TARGETS_10K:
                target = f"< {TARGETS_10K[step]:g} s"
                ok = value["cpu_seconds"] < TARGETS_10K[step]
            if n == 100_000 and step == "plan":
                target = f"< {TARGET_PLAN_100K:g} s, < {TARGET_RSS_100K_MB:g} MB"
                ok = value["cpu_seconds"] < TARGET_PLAN_100K and value["rss_mb"] < TARGET_RSS_100K_MB
            label = {
                "first_apply": "first `apply --target bundle:DIR`",
                "plan": "no-change `plan` after the apply",
                "plan_no_cache": "no-change `plan`, cache off",
            }.get(step, f"`{step}`")
            lines.append(
                f"| {n:,} | {label} (whole process) | {value['seconds']:.2f} s | {value['cpu_seconds']:.2f} s "
                f"| {value['rss_mb']:.0f} MB "
                f"| {target} | {'' if ok is None else verdict(ok)} |"
            )
        inner = data.get("in_process") or {}
        if inner:
            lines.append(
                f"| {n:,} | no-change plan in process, cold / warm | {inner['plan_cold_s']:.2f} s / "
                f"{inner['plan_warm_s']:.2f} s | | | | |"
            )
            ok = inner["incremental_plan_ms"] < TARGET_INCREMENTAL_MS
            lines.append(
                f"| {n:,} | incremental plan after one row change | {inner['incremental_plan_ms']:.1f} ms | "
                f"| | < {TARGET_INCREMENTAL_MS:g} ms | {verdict(ok)} |"
            )
            lines.append(
                f"| {n:,} | idle monitor cycle (median of 50) | {inner['idle_cycle_ms']:.2f} ms | | | | |"
            )
            lines.append(
                f"| {n:,} | row change -> bundle file written (one cycle) | "
                f"{inner['row_change_to_write_s']:.2f} s | | | | |"
            )
            lines.append(
                f"| {n:,} | YAML drop -> bundle file written | {inner['yaml_drop_to_write_s']:.2f} s | | | | |"
            )
    economy = results.get("api_economy")
    if economy:
        lines += [
            "",
            f"API economy (1,000 sources, {economy['first_apply']['modules_changed']} jobs, workspace target "
            "against the emulator through the real SDK):",
            "",
            "| scenario | modules really changed | job writes / requests |",
            "|---|---|---|",
        ]
        for name in ("first_apply", "no_change_apply", "one_row_changed"):
            e = economy[name]
            lines.append(
                f"| {name.replace('_', ' ')} | {e['modules_changed']} | {e['job_writes']} job writes |"
            )
        idle = economy["idle_monitor_20_cycles"]
        lines.append(f"| idle monitor, 20 cycles | 0 | {idle['requests']} requests |")
        limited = economy["rate_limited_apply"]
        lines += [
            "",
            f"Rate limit: the emulator answers 429 (Retry-After: 1) beyond {limited['limit_per_second']} "
            f"requests a second. A first apply of {limited['jobs']} jobs sent {limited['requests']} requests "
            f"in {limited['seconds']:.1f} s ({limited['requests_per_second']:.1f}/s all told, "
            f"{limited['admitted_per_second']:.1f}/s admitted); {limited['throttled_429']} were throttled.",
        ]
    lines.append(SECTION_END)
    return "\n".join(lines)


def write_docs(section: str) -> None:
    replace_section(section, SECTION_START, SECTION_END)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument(
        "--in-process-max", type=int, default=10_000, help="largest size for in-process steps"
    )
    parser.add_argument("--no-api", action="store_true", help="skip the emulator scenarios")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "bench_scale.json")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument(
        "--include", type=Path, action="append", default=[], help="add the sizes of an earlier JSON result"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("databricks.sdk").setLevel(logging.ERROR)
    results: dict[str, Any] = {"machine": machine(), "sizes": {}}
    for earlier in args.include:
        results["sizes"].update(json.loads(earlier.read_text())["sizes"])
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        root = Path(tmp)
        os.environ[CACHE_DIR_VARIABLE] = "off"  # in-process steps compute from the tables
        for size in (int(s) for s in args.sizes.split(",") if s):
            data = whole_process(size, root)
            if size <= args.in_process_max:
                data["in_process"] = in_process(size, root)
            results["sizes"][str(size)] = data
            print(json.dumps({size: data}), flush=True)
        if not args.no_api:
            results["api_economy"] = api_economy(root)
    results["bench_process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    section = render(results)
    print(section)
    if args.write_docs:
        write_docs(section)
    return 0


if __name__ == "__main__":
    threading.stack_size(0)
    sys.exit(main())
