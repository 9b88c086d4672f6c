"""Randomised fault injection: 20-30 % of the requests fail (429, 500, 503, transient 500,
timeouts, connections dropped before and after a commit), over many seeds. Every run converges,
never leaves a duplicate job, and its retries stay bounded."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lakeflow_job_meta import JobOrchestrator, MetadataManager
from lakeflow_job_meta.adapters.retrying import RetryPolicy
from lakeflow_job_meta.cli.main import main
from tests.emulator import Fault
from tests.emulator.server import JobsEmulator
from tests.fakes import FakeClock
from tests.reliability.helpers import assert_one_job_per_module, instant_client, modules_yaml

pytestmark = pytest.mark.reliability

ALL_FAULTS = ["429", "500", "503", "500_transient", "drop_before", "drop_after_commit"]
ENDPOINTS = ["jobs/*", "workspace/*", "permissions/*"]


def load(tmp_path: Path, text: str) -> str:
    control = str(tmp_path / "ctl")
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "modules.yaml").write_text(text)
    manager = MetadataManager(control)
    manager.ensure_exists()
    assert manager.sync_from_volume(str(volume)).changed
    return control


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_cli_applies_converge_within_three_runs_at_25_percent_faults(
    tmp_path: Path, jobs_emulator: JobsEmulator, monkeypatch: pytest.MonkeyPatch, seed: int
):
    """40 modules, a quarter of all requests failing: at most 3 `lakeflow-job-meta apply`
    runs, exactly one job per module, then a run with nothing to write. (40: a full resync
    reads the listing, not a job at a time, and the faults need enough requests to land on.)"""
    control = load(tmp_path, modules_yaml(40))
    monkeypatch.setenv("DATABRICKS_HOST", jobs_emulator.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", "t")
    jobs_emulator.faults.random(rate=0.25, kinds=ALL_FAULTS, seed=seed, endpoints=ENDPOINTS)
    clock = FakeClock()  # the CLI's and its SDK client's waits: recorded, not slept
    codes = []
    for _ in range(3):
        codes.append(main(["apply", "--control-table", control, "--target", "workspace"], clock=clock))
        if codes[-1] == 0:
            break
    fired = Counter(f.kind for f in jobs_emulator.faults.fired)
    requests = sum(jobs_emulator.request_counts().values())
    jobs_emulator.faults.clear()
    assert codes[-1] == 0, codes
    assert sum(fired.values()) >= 20 and fired["500"] >= 1, fired
    assert clock.sleeps  # the retries waited on the injected clock
    # Bounded: about 4 requests a module per run when nothing fails; faults add their retries.
    assert requests <= 40 * 4 * len(codes) * 2, requests
    assert_one_job_per_module(jobs_emulator, control, {f"mod{m:03d}" for m in range(40)})

    jobs_emulator.reset_counters()
    assert main(["apply", "--control-table", control, "--target", "workspace"], clock=clock) == 0
    assert jobs_emulator.writes() == 0


@pytest.mark.parametrize("seed", range(8))
def test_every_seed_converges_without_a_duplicate_and_with_bounded_retries(
    tmp_path: Path, jobs_emulator: JobsEmulator, seed: int
):
    """Eight seeds at 20-30 %, timeouts included (a reply slower than the client's timeout: the
    SDK resends, the first request still commits), and a create's reply lost on purpose."""
    control = load(tmp_path, modules_yaml(8, sources=3))
    client = instant_client(jobs_emulator, http_timeout_seconds=0.5)
    rate = 0.2 + 0.1 * (seed % 3) / 2
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", kind="drop_after_commit", times=1))
    jobs_emulator.faults.add(Fault(endpoint="jobs/reset", kind="slow", delay=0.7, times=1))
    jobs_emulator.faults.random(rate=rate, kinds=ALL_FAULTS, seed=seed, endpoints=ENDPOINTS)
    runs = 0
    budget = RetryPolicy().budget
    for runs in range(1, 4):  # noqa: B007
        retry = RetryPolicy(sleep=lambda seconds: None)
        result = JobOrchestrator(control, client, target="workspace", retry_policy=retry).run_all_modules()
        assert retry.retries_used <= budget
        if result.ok:
            break
    jobs_emulator.faults.clear()
    assert result.ok, [r.as_dict() for r in result if not r.ok]
    assert runs <= 3
    modules = {f"mod{m:03d}" for m in range(8)}
    assert_one_job_per_module(jobs_emulator, control, modules)
    # Settle the last "created" rows (a create is checked once more), then nothing to write.
    JobOrchestrator(control, client, target="workspace").run_all_modules()
    jobs_emulator.reset_counters()
    final = JobOrchestrator(control, client, target="workspace").run_all_modules()
    assert final.ok and {r.action for r in final} == {"noop"} and jobs_emulator.writes() == 0
    assert len(jobs_emulator.jobs()) == len(modules)
