"""Regression tests for bugs found in the engine review."""

from __future__ import annotations

from lakeflow_job_meta.engine.clock import FakeClock
from lakeflow_job_meta.engine.lease import Lease
from lakeflow_job_meta.engine.workspace_target import WorkspaceApplier
from tests.engine.test_reconciler import World, world  # noqa: F401


def test_reconcile_applies_nothing_more_once_the_writer_lease_is_lost(world: World, monkeypatch):  # noqa: F811
    """A long reconcile must check the lease before each module: after the TTL passed and
    another process took the lease, no further module may be applied (two writers)."""
    clock = FakeClock()
    orchestrator = world.orchestrator(clock=clock, max_workers=1)
    original = WorkspaceApplier.apply
    applied: list[str] = []

    def slow_apply(self, change, tracked, live):
        applied.append(change.module)
        result = original(self, change, tracked, live)
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
