"""Subprocess body for the cross-process race tests (not a test module).

``race_worker.py cas PATH NAME START ROUNDS``: for each round, wait for the shared start time,
read the lease row and try to take it with compare_and_set; print one JSON line per round.
``race_worker.py create PATH START``: call ensure_exists at the shared start time.
"""

from __future__ import annotations

import json
import sys
import time

from lakeflow_job_meta.storage import open_tables


def wait_until(start: float) -> None:
    time.sleep(max(0.0, start - time.time()))


def cas(path: str, name: str, start: float, rounds: int) -> None:
    tables = open_tables(path, actor=name)
    for round_no in range(rounds):
        wait_until(start + round_no * 0.5)
        key = f"round-{round_no}"
        won_insert = tables.state.compare_and_set({"scope": "race", "key": key, "value": name}, None)
        print(json.dumps({"round": round_no, "insert": won_insert}), flush=True)


def create(path: str, start: float) -> None:
    tables = open_tables(path)
    wait_until(start)
    tables.ensure_exists()
    print(json.dumps({"ok": True, "version": tables.control.version()}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "cas":
        cas(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    else:
        create(sys.argv[2], float(sys.argv[3]))
