"""Subprocess body for the cross-process race tests (not a test module).

Each worker opens the tables, prints ``ready`` and then waits for the test to say ``go`` on its
stdin (a line to every worker at once: a start no worker can see before the others are ready):

``race_worker.py cas PATH NAME ROUNDS``: for each round, wait for ``go``, try to insert the
round's row with compare_and_set and print one JSON line.
``race_worker.py create PATH``: wait for ``go``, call ensure_exists and print one JSON line.
"""

from __future__ import annotations

import json
import sys

from lakeflow_job_meta.storage import open_tables


def ready() -> None:
    print("ready", flush=True)


def go() -> None:
    if sys.stdin.readline().strip() != "go":
        sys.exit("the test went away")


def cas(path: str, name: str, rounds: int) -> None:
    tables = open_tables(path, actor=name)
    ready()
    for round_no in range(rounds):
        go()
        key = f"round-{round_no}"
        won_insert = tables.state.compare_and_set({"scope": "race", "key": key, "value": name}, None)
        print(json.dumps({"round": round_no, "insert": won_insert}), flush=True)


def create(path: str) -> None:
    tables = open_tables(path)
    ready()
    go()
    tables.ensure_exists()
    print(json.dumps({"ok": True, "version": tables.control.version()}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "cas":
        cas(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        create(sys.argv[2])
