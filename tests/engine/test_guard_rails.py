"""Guard rails, end to end on real delta-rs tables (and the Jobs API emulator through the
real SDK where a workspace is involved): bounded lease wait, blast-radius limit, name conflicts
and adoption, prune per policy, identity/code policy, permissions as managed state."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from lakeflow_job_meta import JobOrchestrator, MetadataManager
from lakeflow_job_meta.cli.main import main as cli_main
from lakeflow_job_meta.engine.lease import Lease
from lakeflow_job_meta.engine.targets.workspace_apply import WorkspaceApplier
from lakeflow_job_meta.errors import LeaseHeldError
from lakeflow_job_meta.storage import open_tables
from lakeflow_job_meta.storage.naming import control_table_id
from tests.fakes import FakeClock
from tests.helpers.policies import SAMPLE_POLICY, SP
from tests.helpers.waiting import wait_for
from tests.helpers.workspace_world import World

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
    with pytest.raises(LeaseHeldError) as caught:
        orchestrator.run_all_modules()
    assert sum(clock.sleeps) == pytest.approx(5.0)
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
def test_cli_apply_beside_a_running_monitor_gives_up_naming_it_and_exits_3(loaded_ctl, tmp_path):
    """Two real processes: the apply waits out its --lease-timeout (how long exactly is
    test_apply_waits_at_most_the_lease_timeout_then_names_holder_and_local_expiry's, on a fake
    clock) and exits 3, naming the monitor that holds the lease."""
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
                "the monitor to take the lease",
            )
            apply = subprocess.run(
                [sys.executable, "-m", "lakeflow_job_meta", "apply", "--control-table", loaded_ctl,
                 "--target", bundle, "--lease-timeout", "1"],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        finally:
            monitor.terminate()
            monitor.wait(30)
    assert apply.returncode == 3, (apply.stdout, apply.stderr, log_path.read_text())
    errors = [line for line in apply.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, apply.stderr
    assert "held by monitor@" in errors[0] and "whose lease expires at" in errors[0]


def test_cli_no_wait_and_negative_timeout(loaded_ctl, tmp_path, capsys):
    clock = FakeClock()
    hold_lease(loaded_ctl, clock)
    argv = ["apply", "--control-table", loaded_ctl, "--target", f"bundle:{tmp_path}/b", "--no-wait"]
    assert cli_main(argv, clock=clock) == 3
    assert clock.sleeps == []
    assert "held by monitor@host:42:abcdef" in capsys.readouterr().err
    assert cli_main(["apply", "--control-table", loaded_ctl, "--lease-timeout", "-1"]) == 2


def test_reconcile_applies_nothing_more_once_the_writer_lease_is_lost(world: World, monkeypatch):
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


# ----------------------------------------------------------------------------- workspace helpers
def module_yaml(name: str, *, schedule: bool = True, extra: str = "", path: str | None = None) -> str:
    block = '    schedule: {quartz_cron_expression: "0 0 5 * * ?", timezone_id: UTC}\n' if schedule else ""
    return (
        f"  - module_name: {name}\n{block}{extra}"
        f"    sources:\n"
        f"      - source_id: {name}_task\n"
        f"        source_type: notebook\n"
        f"        execution_order: 1\n"
        f"        transformation_config:\n"
        f"          task_type: notebook\n"
        f"          notebook_path: {path or f'/Workspace/Shared/etl/{name}'}\n"
    )


def modules_yaml(*blocks: str) -> str:
    return "modules:\n" + "".join(blocks)


def history(world) -> list[dict]:
    return world.manager.tables.history.read_all()


def test_same_name_hand_made_job_is_a_conflict_until_adopted(tmp_path, jobs_emulator, make_workspace_client):

    hand_made = jobs_emulator.add_job(
        {"name": "adhoc", "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/Users/x/nb"}}]}
    )
    world = World(
        tmp_path,
        jobs_emulator,
        make_workspace_client,
        modules_yaml(module_yaml("adhoc"), module_yaml("other")),
    )
    plan = world.orchestrator().plan()
    planned = {c.module: c for c in plan.changes}
    assert planned["adhoc"].action == "error" and f"job {hand_made} (no owner)" in planned["adhoc"].reason
    assert planned["other"].action == "create"

    result = world.orchestrator().run_all_modules()
    assert not result.ok
    assert result["other"].ok and result["other"].action == "create"
    error = result["adhoc"].error or ""
    assert result["adhoc"].outcome == "error" and f"job {hand_made} (no owner)" in error
    assert "adopt_existing: true" in error
    assert jobs_emulator.job_ids("adhoc") == [hand_made]  # no second job of that name
    assert "adhoc" not in world.tracked()

    world.edit_yaml("  - module_name: adhoc\n", "  - module_name: adhoc\n    adopt_existing: true\n")
    adopted = world.orchestrator().run_all_modules()
    assert adopted.ok, adopted.as_dict()
    assert adopted["adhoc"].action == "adopt_existing" and adopted["adhoc"].job_id == hand_made
    assert jobs_emulator.job_ids("adhoc") == [hand_made]
    settings = world.settings(hand_made)
    assert settings["tags"]["ljm_module"] == "adhoc"
    assert settings["tasks"][0]["notebook_task"]["notebook_path"] == "/Workspace/Shared/etl/adhoc"
    assert world.tracked()["adhoc"]["job_id"] == hand_made
    rows = [r for r in history(world) if r["module_name"] == "adhoc"]
    (row,) = [r for r in rows if r["outcome"] == "ok"]
    assert (row["action"], row["job_id"]) == ("adopt_existing", hand_made)
    assert any(r["outcome"] == "error" and f"job {hand_made} (no owner)" in r["error"] for r in rows)
    # managed from then on: the next apply writes nothing
    jobs_emulator.reset_counters()
    assert world.orchestrator().run_all_modules().job_writes == 0


def test_a_job_of_another_control_table_is_never_adopted(tmp_path, jobs_emulator, make_workspace_client):

    (tmp_path / "a").mkdir()
    first = World(
        tmp_path / "a", jobs_emulator, make_workspace_client, modules_yaml(module_yaml("sales_daily"))
    )
    (tmp_path / "b").mkdir()
    second = World(
        tmp_path / "b",
        jobs_emulator,
        make_workspace_client,
        modules_yaml(module_yaml("sales_daily", extra="    adopt_existing: true\n")),
    )
    assert first.orchestrator().run_all_modules().ok
    (theirs,) = jobs_emulator.job_ids("sales_daily")
    result = second.orchestrator().run_all_modules()
    error = result["sales_daily"].error or ""
    assert result["sales_daily"].outcome == "error"
    assert f"job {theirs} (control table {first.table_id} module sales_daily)" in error
    assert "never adopted" in error
    assert jobs_emulator.job_ids("sales_daily") == [theirs]
    assert world_tags(jobs_emulator, theirs)["ljm_table"] == first.table_id


def world_tags(emu, job_id: int) -> dict[str, str]:
    return emu.job(job_id)["settings"]["tags"]


# ----------------------------------------------------------------------------- prune per policy
NINE = [f"job{i}" for i in range(8)]


def nine_modules_yaml(without: tuple[str, ...] = ()) -> str:
    blocks = [module_yaml(n) for n in NINE if n not in without]
    if "adhoc_report" not in without:
        blocks.append(module_yaml("adhoc_report", schedule=False))
    return modules_yaml(*blocks)


def test_workspace_prune_keeps_its_word(tmp_path, jobs_emulator, make_workspace_client):
    from collections import Counter

    from lakeflow_job_meta.engine.status import read_status, render_status
    from lakeflow_job_meta.storage import open_tables

    world = World(tmp_path, jobs_emulator, make_workspace_client, nine_modules_yaml())
    assert world.orchestrator().run_all_modules().ok
    job0, adhoc = world.tracked()["job0"]["job_id"], world.tracked()["adhoc_report"]["job_id"]
    before = {job0: world.settings(job0), adhoc: world.settings(adhoc)}
    world.yaml.write_text(nine_modules_yaml(without=("job0", "adhoc_report")))
    world.sync()

    jobs_emulator.reset_counters()
    kept = world.orchestrator(prune="keep").run_all_modules()
    assert kept.ok and {kept["job0"].action, kept["adhoc_report"].action} == {"noop"}
    assert jobs_emulator.writes() == 0 and world.settings(job0) == before[job0]

    plan = world.orchestrator(prune="pause").plan()
    text = plan.render_text()
    assert "  ! adhoc_report: orphaned, no schedule to pause; --prune delete removes it" in text
    assert "No changes" not in text
    assert {c.module: c.action for c in plan.changes if c.action != "noop"} == {
        "job0": "pause",
        "adhoc_report": "orphaned",
    }
    paused = world.orchestrator(prune="pause").run_all_modules()
    assert paused.ok and paused["job0"].action == "pause" and paused["adhoc_report"].action == "orphaned"
    assert jobs_emulator.write_counts() == Counter({"jobs/update": 1})
    assert world.settings(job0)["schedule"]["pause_status"] == "PAUSED"
    assert world.settings(job0)["tags"]["ljm_removed"] == "true"
    assert world.settings(job0)["tasks"] == before[job0]["tasks"]
    assert world.settings(adhoc) == before[adhoc]  # nothing to pause: left as it is
    status = read_status(open_tables(world.control), world.control)
    [entry] = next(m for m in status["modules"] if m["module"] == "adhoc_report")["targets"]
    assert entry["target"] == paused.target and entry["status"] == "orphaned"
    assert "! adhoc_report" in render_status(status) and "--prune delete removes it" in render_status(status)

    # shown on every run, never "No changes", and no write
    jobs_emulator.reset_counters()
    again = world.orchestrator(prune="pause").run_all_modules()
    assert again["adhoc_report"].action == "orphaned" and again["job0"].action == "noop"
    assert jobs_emulator.writes() == 0
    replan = world.orchestrator(prune="pause").plan(check_drift=False)
    assert "! adhoc_report: orphaned" in replan.render_text()

    # the module comes back: the tool's pause and its tag are undone
    world.yaml.write_text(nine_modules_yaml())
    world.sync()
    back = world.orchestrator().run_all_modules()
    assert back.ok and back["job0"].action == "update"
    assert "ljm_removed" not in world.settings(job0)["tags"]
    assert world.tracked()["adhoc_report"]["status"] == "ok"

    world.yaml.write_text(nine_modules_yaml(without=("job0", "adhoc_report")))
    world.sync()
    deleted = world.orchestrator(prune="delete").run_all_modules()
    assert deleted.ok and deleted["job0"].action == "delete" and deleted["adhoc_report"].action == "delete"
    assert jobs_emulator.job(job0) is None and jobs_emulator.job(adhoc) is None


def test_bundle_prune_keeps_its_word(tmp_path):
    import yaml

    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "m.yaml").write_text(nine_modules_yaml())
    ctl = str(tmp_path / "ctl")
    manager = MetadataManager(ctl)
    manager.sync_from_volume(str(volume))
    bundle = tmp_path / "bundle"

    def apply(prune: str):
        return JobOrchestrator(ctl, target=f"bundle:{bundle}", prune=prune).run_all_modules()

    assert apply("pause").ok
    job0, adhoc = bundle / "resources" / "job0.job.yml", bundle / "resources" / "adhoc_report.job.yml"
    original = {job0: job0.read_bytes(), adhoc: adhoc.read_bytes()}
    (volume / "m.yaml").write_text(nine_modules_yaml(without=("job0", "adhoc_report")))
    manager.sync_from_volume(str(volume))

    kept = apply("keep")
    assert kept.ok and {kept["job0"].action, kept["adhoc_report"].action} == {"noop"}
    assert {p: p.read_bytes() for p in original} == original

    plan = JobOrchestrator(ctl, target=f"bundle:{bundle}").plan()
    assert "  ! adhoc_report: orphaned, no schedule to pause; --prune delete removes it" in plan.render_text()
    paused = apply("pause")
    assert paused.ok and paused["job0"].action == "pause" and paused["adhoc_report"].action == "orphaned"
    (job,) = yaml.safe_load(job0.read_text())["resources"]["jobs"].values()
    assert job["schedule"]["pause_status"] == "PAUSED" and job["tags"]["ljm_removed"] == "true"
    assert job["tasks"][0]["notebook_task"]["notebook_path"] == "/Workspace/Shared/etl/job0"
    assert adhoc.read_bytes() == original[adhoc]
    settled = job0.read_bytes()
    again = apply("pause")
    assert again["job0"].action == "noop" and job0.read_bytes() == settled

    (volume / "m.yaml").write_text(nine_modules_yaml())
    manager.sync_from_volume(str(volume))
    assert apply("pause")["job0"].action == "update" and job0.read_bytes() == original[job0]

    (volume / "m.yaml").write_text(nine_modules_yaml(without=("job0", "adhoc_report")))
    manager.sync_from_volume(str(volume))
    deleted = apply("delete")
    assert deleted["job0"].action == "delete" and deleted["adhoc_report"].action == "delete"
    assert not job0.exists() and not adhoc.exists()


# ----------------------------------------------------------------------------- blast radius
TEN = [f"mod{i}" for i in range(10)]


def ten_modules_yaml(inactive: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> str:
    return modules_yaml(
        *(module_yaml(n, extra="    is_active: false\n" if n in inactive else "") for n in TEN),
        *(module_yaml(n) for n in extra),
    )


def test_half_the_modules_deactivated_is_held_then_applied_with_the_flag(
    tmp_path, jobs_emulator, make_workspace_client
):
    from collections import Counter

    world = World(tmp_path, jobs_emulator, make_workspace_client, ten_modules_yaml())
    assert world.orchestrator().run_all_modules().ok
    half = tuple(TEN[:5])
    # one bad edit deactivates half of the modules, while a new module arrives
    world.yaml.write_text(ten_modules_yaml(inactive=half, extra=("fresh",)))
    world.sync()
    jobs_emulator.reset_counters()

    plan = world.orchestrator().plan()
    assert any("--allow-mass-change" in w for w in plan.warnings)
    assert "--allow-mass-change" in plan.render_text()
    held = world.orchestrator().run_all_modules()
    assert not held.ok
    assert {r.module: (r.action, r.outcome) for r in held if r.outcome != "ok"} == {
        m: ("pause", "held") for m in half
    }
    assert held["fresh"].action == "create" and held["fresh"].ok  # the rest applies
    assert jobs_emulator.write_counts() == Counter({"jobs/create": 1})  # 0 pauses or deletes
    (warning,) = held.warnings
    assert "--allow-mass-change" in warning and "5 of 10 managed jobs" in warning
    for module in half:
        settings = world.settings(world.tracked()[module]["job_id"])
        assert settings["schedule"].get("pause_status", "UNPAUSED") == "UNPAUSED"
    assert {r["module_name"] for r in history(world) if r["outcome"] == "held"} == set(half)

    jobs_emulator.reset_counters()
    allowed = world.orchestrator(allow_mass_change=True).run_all_modules()
    assert allowed.ok and {allowed[m].action for m in half} == {"pause"}
    assert jobs_emulator.write_counts() == Counter({"jobs/update": 5})


def test_cli_exit_1_names_the_flag_then_applies_with_it(tmp_path, capsys):
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "m.yaml").write_text(ten_modules_yaml())
    ctl = str(tmp_path / "ctl")
    MetadataManager(ctl).sync_from_volume(str(volume))
    target = f"bundle:{tmp_path / 'bundle'}"
    base = ["apply", "--control-table", ctl, "--target", target, "--prune", "delete"]
    assert cli_main(base) == 0
    (volume / "m.yaml").write_text(ten_modules_yaml(inactive=tuple(TEN[:5])))
    MetadataManager(ctl).sync_from_volume(str(volume))
    capsys.readouterr()

    assert cli_main(base) == 1
    err = capsys.readouterr().err
    assert "--allow-mass-change" in err and "mass change held back: 5 of 10" in err
    assert len(list((tmp_path / "bundle" / "resources").glob("*.job.yml"))) == 10  # nothing deleted

    assert cli_main([*base, "--allow-mass-change"]) == 0
    assert len(list((tmp_path / "bundle" / "resources").glob("*.job.yml"))) == 5


def test_an_emptied_volume_prunes_nothing(tmp_path, jobs_emulator, workspace_client, caplog):
    from lakeflow_job_meta import MetadataMonitor

    volume = tmp_path / "volume"
    volume.mkdir()
    for name in ("a", "b", "c"):
        (volume / f"{name}.yaml").write_text(modules_yaml(module_yaml(name)))
    ctl = str(tmp_path / "ctl")
    clock = FakeClock()

    def monitor(allow: bool = False) -> MetadataMonitor:
        orchestrator = JobOrchestrator(
            ctl, workspace_client, target="workspace", clock=clock, allow_mass_change=allow
        )
        return MetadataMonitor(
            ctl, volume_path=str(volume), orchestrator=orchestrator, clock=clock, watch_mode="poll"
        )

    first = monitor()
    assert first.run_once().ok
    jobs = {n: jobs_emulator.job_ids(n)[0] for n in ("a", "b", "c")}
    for path in volume.iterdir():
        path.unlink()
    jobs_emulator.reset_counters()

    again = monitor()
    reports = [again.check_and_update(force_full=True), again.check_and_update(force_full=True)]
    again.close()
    for report in reports:  # said on every cycle until allowed or undone
        assert not report.ok and report.files_deleted == []
        assert any("listed no YAML files but held 3" in line for line in report.held)
        assert any("--allow-mass-change" in line for line in report.held)
    assert jobs_emulator.writes() == 0
    assert {r["module_name"] for r in open_tables(ctl).control.read_all()} == {"a", "b", "c"}
    assert sum("listed no YAML files" in r.getMessage() for r in caplog.records) >= 2

    # load --sync refuses too, and keeps every row
    with pytest.raises(Exception, match="listed no YAML files but held 3"):
        MetadataManager(ctl).sync_from_volume(str(volume))
    assert cli_main(["load", str(volume), "--control-table", ctl, "--sync"]) == 1

    allowed = monitor(allow=True)
    assert allowed.run_once().ok
    assert all(
        jobs_emulator.job(job_id)["settings"]["schedule"]["pause_status"] == "PAUSED"
        for job_id in jobs.values()
    )


def test_the_monitor_holds_and_logs_every_cycle_until_allowed(tmp_path, workspace_client, jobs_emulator):
    from lakeflow_job_meta import MetadataMonitor

    meta = tmp_path / "meta.yaml"
    meta.write_text(ten_modules_yaml())
    ctl = str(tmp_path / "ctl")
    manager = MetadataManager(ctl)
    manager.load_yaml(str(meta))
    clock = FakeClock()
    orchestrator = JobOrchestrator(ctl, workspace_client, target="workspace", clock=clock)
    monitor = MetadataMonitor(ctl, orchestrator=orchestrator, clock=clock, check_interval_seconds=5)
    try:
        assert monitor.check_and_update().ok
        meta.write_text(ten_modules_yaml(inactive=tuple(TEN[:5])))
        manager.load_yaml(str(meta))
        jobs_emulator.reset_counters()
        reports = []
        for _ in range(3):
            reports.append(monitor.check_and_update())
            clock.advance(5)
        for report in reports:
            assert any("--allow-mass-change" in line for line in report.held), report.summary()
            assert report.run is not None and {r.outcome for r in report.run if r.module in TEN[:5]} == {
                "held"
            }
        assert jobs_emulator.writes() == 0
        orchestrator.allow_mass_change = True
        done = monitor.check_and_update()
        assert done.ok and {done.run[m].action for m in TEN[:5]} == {"pause"}
        assert jobs_emulator.writes() == 5
    finally:
        monitor.close()


# ----------------------------------------------------------------------------- policy


def test_policy_rejects_run_as_and_code_path_with_no_write_for_that_module(
    tmp_path, jobs_emulator, make_workspace_client
):
    from lakeflow_job_meta.metadata.policy import load_policy

    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(SAMPLE_POLICY)
    world = World(
        tmp_path,
        jobs_emulator,
        make_workspace_client,
        modules_yaml(
            module_yaml("good"),
            module_yaml("bad_runas", extra="    run_as: {user_name: mallory@example.com}\n"),
            module_yaml("bad_path", path="/Users/eve/notebook"),
        ),
    )
    orchestrator = world.orchestrator(policy=load_policy(str(policy_path)))
    result = orchestrator.run_all_modules()
    assert not result.ok and result["good"].ok and result["good"].action == "create"
    runas_error, path_error = result["bad_runas"].error or "", result["bad_path"].error or ""
    assert "module bad_runas: run_as: 'mallory@example.com' is not allowed by the policy" in runas_error
    assert str(world.yaml) in runas_error or "metadata.yaml" in runas_error
    assert "transformation_config.notebook_path" in path_error and "source bad_path_task" in path_error
    assert "'/Users/eve/notebook' is outside the policy's code_paths.allowed_prefixes" in path_error
    assert jobs_emulator.job_ids("bad_runas") == [] and jobs_emulator.job_ids("bad_path") == []
    assert jobs_emulator.write_counts() == {"jobs/create": 1}
    good = world.settings(world.tracked()["good"]["job_id"])
    assert good["run_as"] == {"service_principal_name": SP}  # the policy's default
    acl = jobs_emulator.permissions(world.tracked()["good"]["job_id"])["access_control_list"]
    assert any(e.get("group_name") == "data-eng" for e in acl)
    # an invalid module is never pruned: no pause of a job it may have had
    assert {r.module for r in result if r.action in ("pause", "delete")} == set()


def test_without_a_policy_each_run_says_so_in_one_line(tmp_path, capsys):
    ctl = str(tmp_path / "ctl")
    MetadataManager(ctl).load_yaml(str(EXAMPLES))
    target = f"bundle:{tmp_path / 'bundle'}"
    assert cli_main(["plan", "--control-table", ctl, "--target", target]) == 0
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "no policy given" in line] == [
        "warning: no policy given (--policy): every run_as identity, code path and permission is allowed"
    ]
    policy = tmp_path / "policy.yaml"
    policy.write_text("permissions:\n  default: [{group_name: data-eng, permission_level: CAN_VIEW}]\n")
    assert cli_main(["apply", "--control-table", ctl, "--target", target, "--policy", str(policy)]) == 0
    assert "no policy given" not in capsys.readouterr().err
    import yaml

    (job,) = yaml.safe_load((tmp_path / "bundle" / "resources" / "ml_features.job.yml").read_text())[
        "resources"
    ]["jobs"].values()
    assert {"group_name": "data-eng", "level": "CAN_VIEW"} in job["permissions"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_as:\n  allowed: oops\n")
    assert cli_main(["plan", "--control-table", ctl, "--target", target, "--policy", str(bad)]) == 2
    assert f"{bad}:2: run_as.allowed: must be a list" in capsys.readouterr().err


def test_wheel_parameters_policy_and_allow_mass_change():
    from lakeflow_job_meta.cli.main import build_parser
    from lakeflow_job_meta.main import translate_parameters

    argv = translate_parameters(
        [
            "--control_table=main.ops.ctl",
            "--policy=/Volumes/main/ops/cfg/policy.yaml",
            "--allow_mass_change=true",
        ]
    )
    assert argv == [
        "monitor",
        "--control-table=main.ops.ctl",
        "--policy=/Volumes/main/ops/cfg/policy.yaml",
        "--allow-mass-change",
    ]
    args = build_parser().parse_args(argv)
    assert args.policy == "/Volumes/main/ops/cfg/policy.yaml" and args.allow_mass_change is True
    assert "--allow-mass-change" not in translate_parameters(["--allow_mass_change=false"])


# ----------------------------------------------------------------------------- permissions
def test_a_hand_removed_default_grant_is_restored_by_the_next_apply(
    tmp_path, jobs_emulator, make_workspace_client
):
    from lakeflow_job_meta.metadata.policy import parse_policy

    policy = parse_policy(
        "permissions:\n  default: [{group_name: data-eng, permission_level: CAN_VIEW}]\n", "p"
    )
    world = World(
        tmp_path, jobs_emulator, make_workspace_client, modules_yaml(module_yaml("a"), module_yaml("b"))
    )
    assert world.orchestrator(policy=policy).run_all_modules().ok
    job_id = world.tracked()["a"]["job_id"]

    def grants() -> dict[str, str]:
        acl = jobs_emulator.permissions(job_id)["access_control_list"]
        return {
            e.get("group_name") or e.get("user_name") or "": p["permission_level"]
            for e in acl
            for p in e["all_permissions"]
            if not p.get("inherited")
        }

    assert grants().get("data-eng") == "CAN_VIEW"  # granted at create
    owner = {k: v for k, v in grants().items() if v == "IS_OWNER"}
    # someone removes the grant by hand (a PUT keeping only the owner)
    world.client.api_client.do(
        "PUT",
        f"/api/2.0/permissions/jobs/{job_id}",
        body={"access_control_list": [{"user_name": u, "permission_level": "IS_OWNER"} for u in owner]},
    )
    assert "data-eng" not in grants()
    jobs_emulator.reset_counters()

    plan = world.orchestrator(policy=policy).plan()
    (change,) = [c for c in plan.changes if c.module == "a"]
    assert change.drift and change.acl_drift == ["permissions group_name=data-eng: none -> CAN_VIEW"]
    restored = world.orchestrator(policy=policy).run_all_modules()
    assert restored.ok and restored["a"].drift and restored["a"].action == "noop"
    assert "permissions group_name=data-eng: none -> CAN_VIEW" in restored["a"].diff
    puts = [r for r in jobs_emulator.requests if r.method == "PUT" and r.endpoint.startswith("permissions/")]
    assert len(puts) == 1 and jobs_emulator.writes() == 0  # one write: the ACL, not the job
    assert grants().get("data-eng") == "CAN_VIEW" and grants().get(next(iter(owner))) == "IS_OWNER"
    assert not restored["b"].drift


def test_adopt_existing_must_be_a_boolean(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text(modules_yaml(module_yaml("m", extra='    adopt_existing: "yes"\n')))
    assert cli_main(["validate", str(path)]) == 1
    assert f"{path}:4: modules[0].adopt_existing: must be true or false" in capsys.readouterr().out
