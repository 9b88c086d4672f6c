"""Issue 9: guard rails, end to end on real delta-rs tables (and the Jobs API emulator through the
real SDK where a workspace is involved): bounded lease wait, blast-radius limit, name conflicts
and adoption, prune per policy, identity/code policy, permissions as managed state."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from lakeflow_job_meta import JobOrchestrator, MetadataManager
from lakeflow_job_meta.cli.main import main as cli_main
from lakeflow_job_meta.engine.clock import FakeClock
from lakeflow_job_meta.engine.lease import Lease
from lakeflow_job_meta.errors import LeaseHeldError
from lakeflow_job_meta.storage import open_tables
from lakeflow_job_meta.storage.naming import control_table_id
from tests.engine.test_monitor import wait_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "metadata_examples.yaml"


@pytest.fixture
def loaded_ctl(tmp_path: Path) -> str:
    """A control table loaded from the examples."""
    ctl = str(tmp_path / "ctl")
    manager = MetadataManager(ctl)
    manager.ensure_exists()
    manager.load_yaml(str(EXAMPLES))
    return ctl


def hold_lease(ctl: str, clock: FakeClock, holder: str = "monitor@host:42:abcdef") -> Lease:
    lease = Lease(open_tables(ctl).state, holder_id=holder, scope=control_table_id(ctl), clock=clock)
    assert lease.try_acquire()
    return lease


# ----------------------------------------------------------------------------- lease timeout
def test_apply_waits_at_most_the_lease_timeout_then_names_holder_and_local_expiry(loaded_ctl, tmp_path):
    clock = FakeClock()
    holder = hold_lease(loaded_ctl, clock)
    orchestrator = JobOrchestrator(
        loaded_ctl, target=f"bundle:{tmp_path / 'b'}", clock=clock, lease_timeout=5
    )
    started = clock.monotonic()
    with pytest.raises(LeaseHeldError) as caught:
        orchestrator.run_all_modules()
    assert clock.monotonic() - started == pytest.approx(5.0)
    message = str(caught.value)
    expires = datetime.fromtimestamp(holder.info.expires_at).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    assert "held by monitor@host:42:abcdef, whose lease expires at " + expires in message
    assert "\n" not in message and "gave up after waiting 5s" in message
    assert not (tmp_path / "b").exists()  # nothing was applied


def test_lease_timeout_zero_does_not_wait(loaded_ctl, tmp_path):
    clock = FakeClock()
    hold_lease(loaded_ctl, clock)
    orchestrator = JobOrchestrator(
        loaded_ctl, target=f"bundle:{tmp_path / 'b'}", clock=clock, lease_timeout=0
    )
    with pytest.raises(LeaseHeldError, match="held by monitor@host:42:abcdef"):
        orchestrator.run_all_modules()
    assert clock.sleeps == []


def test_lease_freed_within_the_timeout_is_taken(loaded_ctl, tmp_path):
    clock = FakeClock()
    holder = Lease(
        open_tables(loaded_ctl).state,
        holder_id="monitor@x",
        scope=control_table_id(loaded_ctl),
        clock=clock,
        ttl_seconds=3,
    )
    assert holder.try_acquire()
    orchestrator = JobOrchestrator(
        loaded_ctl, target=f"bundle:{tmp_path / 'b'}", clock=clock, lease_timeout=5
    )
    assert orchestrator.run_all_modules().ok
    assert (tmp_path / "b" / "databricks.yml").exists()


@pytest.mark.slow
def test_cli_apply_beside_a_running_monitor_exits_3_within_seconds(loaded_ctl, tmp_path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
    }
    bundle = f"bundle:{tmp_path / 'bundle'}"
    log_path = tmp_path / "monitor.log"
    with open(log_path, "wb") as log_file:
        monitor = subprocess.Popen(
            [sys.executable, "-m", "lakeflow_job_meta", "monitor", "--control-table", loaded_ctl,
             "--target", bundle, "--check-interval-seconds", "1"],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            state = open_tables(loaded_ctl).state
            wait_for(
                lambda: any(
                    "monitor@" in str(r.get("value")) for r in state.read_all() if r.get("key") == "lease"
                ),
                60,
                "the monitor to take the lease",
            )
            started = time.monotonic()
            apply = subprocess.run(
                [sys.executable, "-m", "lakeflow_job_meta", "apply", "--control-table", loaded_ctl,
                 "--target", bundle, "--lease-timeout", "5"],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            elapsed = time.monotonic() - started
        finally:
            monitor.terminate()
            monitor.wait(30)
    assert apply.returncode == 3, (apply.stdout, apply.stderr, log_path.read_text())
    assert elapsed < 5 + 20  # five seconds of waiting plus interpreter start-up on a loaded machine
    errors = [line for line in apply.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, apply.stderr
    assert "held by monitor@" in errors[0] and "whose lease expires at" in errors[0]


def test_cli_no_wait_and_negative_timeout(loaded_ctl, tmp_path, capsys):
    hold_lease(loaded_ctl, FakeClock(start=time.time()))
    assert (
        cli_main(["apply", "--control-table", loaded_ctl, "--target", f"bundle:{tmp_path}/b", "--no-wait"])
        == 3
    )
    assert "held by monitor@host:42:abcdef" in capsys.readouterr().err
    assert cli_main(["apply", "--control-table", loaded_ctl, "--lease-timeout", "-1"]) == 2
