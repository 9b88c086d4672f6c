"""Measure the delta-rs backend on a 10,000-row control table (a benchmark, run by hand):

    .venv/bin/python benchmarks/bench_storage.py

Figures go into docs/STORAGE.md. ``version()`` is what every monitor cycle asks first: a warm
call must stay cheap (the script fails when its median exceeds ``VERSION_BUDGET_MS``); the test
suite checks only that it follows other writers.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lakeflow_job_meta.storage import open_tables


def row(i: int, order: int = 1) -> dict:
    return {
        "source_id": f"s{i:05d}",
        "module_name": f"m{i % 200}",
        "source_type": "sql",
        "execution_order": order,
        "source_config": '{"path":"/Volumes/x/y/z"}',
        "target_config": '{"table":"main.x.y"}',
        "transformation_config": '{"task_type":"notebook","notebook_path":"/Repos/x/nb"}',
        "is_active": True,
        "source_file": "modules.yaml",
    }


VERSION_BUDGET_MS = 50.0


def timed(label: str, fn, repeat: int) -> float:
    """Print and return the median milliseconds of ``fn`` over ``repeat`` calls."""
    fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    print(
        f"{label:<44} median {statistics.median(samples):7.2f} ms  p90 {sorted(samples)[int(repeat * 0.9)]:7.2f} ms"
    )
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tables = open_tables(f"{tmp}/ctl")
        tables.ensure_exists()
        ctl = tables.control
        ctl.merge([row(i) for i in range(10_000)])
        for n in range(30):
            ctl.merge([row(n, order=2)])
        print(f"10,000 rows, {ctl.version() + 1} commits")
        warm = timed("version(), warm (cached + update_incremental)", ctl.version, 500)
        if warm > VERSION_BUDGET_MS:
            sys.exit(f"version() takes {warm:.1f} ms, over its {VERSION_BUDGET_MS:g} ms budget")
        timed(
            "version(), cold (new DeltaRsTable each call)",
            lambda: open_tables(f"{tmp}/ctl").control.version(),
            100,
        )
        base = ctl.version()
        ctl.merge([row(5, order=7)])
        timed("changes_since(one MERGE of one row)", lambda: ctl.changes_since(base), 50)
        timed("read_all()", ctl.read_all, 20)
        counter = iter(range(10**6))
        timed("merge() of one row", lambda: ctl.merge([row(7, order=next(counter))]), 20)
        st = tables.state
        st.compare_and_set({"scope": "lease", "key": "writer", "value": "0"}, None)
        counter2 = iter(range(1, 10**6))

        def cas() -> None:
            n = next(counter2)
            assert st.compare_and_set(
                {"scope": "lease", "key": "writer", "value": str(n)}, {"value": str(n - 1)}
            )

        timed("compare_and_set() (winning) on the state table", cas, 20)


if __name__ == "__main__":
    main()
