"""Run health of a module from its runs: the pure rules ``status --runs``, alerts and the status
page share."""

from __future__ import annotations

from lakeflow_job_meta.planning.health import (
    HealthRules,
    HealthState,
    RunFacts,
    duration_limit,
    module_health,
)

NOW = 1_700_000_000.0


def done(
    run_id: int, started: float, took: float, result: str = "SUCCESS", error: str | None = None
) -> RunFacts:
    return RunFacts(
        run_id=run_id,
        started=started,
        ended=started + took,
        life_cycle_state="TERMINATED",
        result_state=result,
        error=error,
    )


def test_no_runs_is_not_unhealthy() -> None:
    judged = module_health("m", [], now=NOW)
    assert judged.state == HealthState.NO_RUNS and judged.healthy


def test_consecutive_failures_count_back_to_the_last_success_and_a_good_run_recovers() -> None:
    runs = [
        done(1, NOW - 400, 10),
        done(2, NOW - 300, 10, "FAILED", "boom"),
        done(3, NOW - 200, 10, "TIMEDOUT"),
    ]
    judged = module_health("m", runs, now=NOW)
    assert judged.state == HealthState.FAILING and not judged.healthy
    assert judged.consecutive_failures == 2 and judged.last_result == "TIMEDOUT"
    assert "run 3 TIMEDOUT (2 consecutive failures)" in judged.problems[0][1]
    recovered = module_health("m", [*runs, done(4, NOW - 100, 10)], now=NOW)
    assert recovered.state == HealthState.HEALTHY and recovered.consecutive_failures == 0


def test_the_modules_health_rule_flags_a_long_run_running_or_finished() -> None:
    limit = duration_limit(
        {"health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 60}]}}
    )
    assert limit == 60.0
    running = RunFacts(run_id=9, started=NOW - 120, life_cycle_state="RUNNING")
    judged = module_health("m", [running], now=NOW, limit_seconds=limit)
    assert judged.state == HealthState.TOO_LONG
    assert judged.problems[0][1] == "run 9 running for 120 s (limit 60 s)"
    finished = module_health("m", [done(1, NOW - 500, 90)], now=NOW, limit_seconds=limit)
    assert finished.state == HealthState.TOO_LONG


def test_a_multiple_of_the_recent_median_flags_a_long_run_without_a_rule() -> None:
    usual = [done(i, NOW - 1000 * i, 100) for i in range(1, 5)]
    judged = module_health("m", [*usual, done(99, NOW - 50, 400)], now=NOW + 1000)
    assert judged.median_seconds == 100.0 and judged.limit_seconds == 300.0
    assert judged.state == HealthState.TOO_LONG
    # Too few successful runs for a median: no rule at all.
    assert (
        module_health("m", [done(1, NOW - 9, 1), done(2, NOW - 5, 400)], now=NOW).state == HealthState.HEALTHY
    )


def test_queued_too_long_and_skipped() -> None:
    queued = RunFacts(run_id=5, started=NOW - 100, life_cycle_state="QUEUED")
    rules = HealthRules(queue_limit_seconds=60)
    assert module_health("m", [queued], now=NOW, rules=rules).state == HealthState.QUEUED_TOO_LONG
    assert module_health("m", [queued], now=NOW - 50, rules=rules).state == HealthState.HEALTHY
    skipped = RunFacts(run_id=6, started=NOW - 10, life_cycle_state="SKIPPED")
    assert module_health("m", [skipped], now=NOW).state == HealthState.SKIPPED


def test_a_failure_outranks_a_long_run() -> None:
    runs = [done(1, NOW - 100, 90, "FAILED")]
    judged = module_health("m", runs, now=NOW, limit_seconds=60)
    assert [p[0] for p in judged.problems] == [HealthState.FAILING, HealthState.TOO_LONG]
    assert judged.state == HealthState.FAILING
