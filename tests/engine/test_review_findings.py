"""Regression tests for bugs found in the engine review."""

from __future__ import annotations

from lakeflow_job_meta.engine.lease import Lease
from lakeflow_job_meta.engine.targets.workspace_apply import WorkspaceApplier
from tests.engine.test_reconciler import ATTEMPTS, World, world  # noqa: F401
from tests.fakes import FakeClock


def test_reconcile_applies_nothing_more_once_the_writer_lease_is_lost(world: World, monkeypatch):  # noqa: F811
    """A long reconcile must check the lease before each module: after the TTL passed and
    another process took the lease, no further module may be applied (two writers)."""
    clock = FakeClock()
    orchestrator = world.orchestrator(clock=clock, max_workers=1)
    original = WorkspaceApplier.apply
    applied: list[str] = []

    def slow_apply(self, change, tracked, live, **kwargs):
        applied.append(change.module)
        result = original(self, change, tracked, live, **kwargs)
        if len(applied) == 1:  # the first module took longer than the lease TTL ...
            clock.advance(120)
            rival = Lease(
                orchestrator.tables.state, holder_id="rival", scope=orchestrator.table_id, clock=clock
            )
            assert rival.try_acquire()  # ... and another monitor took over
        return result

    monkeypatch.setattr(WorkspaceApplier, "apply", slow_apply)
    result = orchestrator.run_all_modules()
    assert len(applied) == 1
    assert world.emu.write_counts()["jobs/create"] == 1
    others = [r for r in result if r.module != applied[0]]
    assert others and all(r.outcome != "ok" and "lease" in (r.error or "") for r in others)
    assert not result.ok


def test_an_apply_that_failed_in_a_monitor_cycle_is_retried_without_a_new_version(world: World):  # noqa: F811
    """The Delta versions of a failed apply count as processed, so the failed module itself is
    retried on the next cycles (with backoff) instead of waiting for the full resync."""
    from lakeflow_job_meta import MetadataMonitor
    from tests.emulator import Fault

    clock = FakeClock()
    monitor = MetadataMonitor(
        world.control,
        check_interval_seconds=10,
        orchestrator=world.orchestrator(clock=clock),
        clock=clock,
    )
    assert monitor.check_and_update().run.ok
    world.edit_yaml("base_parameters: {load_mode: streaming}", "base_parameters: {load_mode: batch}")
    world.emu.faults.add(Fault(endpoint="jobs/reset", kind="500", times=ATTEMPTS))  # outlasts our retries
    world.emu.reset_counters()

    failed = monitor.check_and_update()
    assert failed.run is not None and not failed.run.ok
    assert world.emu.writes() == 0
    assert monitor._read_state("progress")["retrying"] == ["clickstream_continuous"]

    clock.advance(10)
    retried = monitor.check_and_update()
    assert not retried.table_changed
    assert retried.modules_reconciled == ["clickstream_continuous"]
    assert retried.run is not None and retried.run.ok
    assert world.emu.write_counts() == {"jobs/reset": 1}

    clock.advance(10)
    assert monitor.check_and_update().idle  # nothing left to retry


def test_production_environments_share_the_tracking_rows_of_no_environment(world: World):  # noqa: F811
    """`--env prod` deploys the same job names as no `--env`: one set of tracking rows, so a
    prune under one never deletes a job the other still tracks."""
    plain = world.orchestrator()
    assert plain.run_all_modules().ok
    created = world.emu.writes("jobs/create")
    # The table holds one environment's values: it is loaded again for each (issue 15).
    world.manager.sync_from_volume(str(world.volume), env="prod")
    prod = world.orchestrator(env="prod")
    assert prod.target_key == plain.target_key
    assert prod.run_all_modules().ok
    assert world.emu.writes("jobs/create") == created  # nothing re-created or re-adopted
    world.manager.sync_from_volume(str(world.volume), env="dev")
    dev = world.orchestrator(env="dev")
    assert dev.target_key == plain.target_key + "#env=dev"
