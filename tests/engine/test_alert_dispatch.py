"""Alert delivery off the loop: bounded queue, per-webhook rate limit on the injected clock,
secrets resolved at send time and never in logs, and a real POST to a loopback sink."""

from __future__ import annotations

import logging
import threading

import pytest

from lakeflow_job_meta.adapters.webhooks import post_json, resolve_url
from lakeflow_job_meta.engine.alerts import AlertDispatcher
from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.metadata.policy import AlertPolicy, Webhook
from lakeflow_job_meta.planning.alerts import Alert
from lakeflow_job_meta.vocabulary import AlertEvent, AlertFormat
from tests.fakes import FakeClock
from tests.run_world import Sink

FAILED = Alert(AlertEvent.RUN_FAILED, "sales", "run 1 FAILED")


def dispatcher(sent: list[tuple[str, bytes]], *, max_per_minute: int = 2, **kwargs) -> AlertDispatcher:
    policy = AlertPolicy(webhooks=(Webhook(url="${env:HOOK}"),), max_per_minute=max_per_minute)
    return AlertDispatcher(
        policy,
        sender=lambda url, body: sent.append((url, body)) or 200,
        resolve=lambda hook: "http://resolved.invalid/hook",
        clock=kwargs.pop("clock", FakeClock()),
        control_table="ctl",
        **kwargs,
    )


def test_rate_limited_per_webhook_and_the_next_alert_says_how_many_were_dropped() -> None:
    sent: list[tuple[str, bytes]] = []
    clock = FakeClock()
    d = dispatcher(sent, clock=clock)
    for _ in range(5):
        d.submit(FAILED)
    d.drain()
    assert len(sent) == 2 and d.delivery.rate_limited == 3
    clock.advance(61)
    d.submit(FAILED)
    d.drain()
    assert b"(3 earlier alert(s) dropped)" in sent[-1][1]
    d.close()


def test_a_full_queue_drops_instead_of_blocking_the_loop() -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow(url: str, body: bytes) -> int:
        entered.set()
        release.wait()
        return 200

    policy = AlertPolicy(webhooks=(Webhook(url="http://x.invalid/"),))
    d = AlertDispatcher(
        policy, sender=slow, resolve=lambda h: h.url, clock=FakeClock(), control_table="ctl", queue_size=1
    )
    d.submit(FAILED)
    entered.wait()  # the worker holds the first alert
    d.submit(FAILED)  # fills the queue
    d.submit(FAILED)  # returns at once: dropped
    assert d.delivery.queue_full == 1
    release.set()
    d.close()
    assert d.delivery.sent == 2


def test_secret_references_resolve_at_send_time_and_failures_never_log_the_url(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hook = Webhook(url="${env:LJM_HOOK}")
    with pytest.raises(ConfigurationError, match="LJM_HOOK is not set"):
        resolve_url(hook, environ={})
    secret = Webhook(url="${secret:ops/pager}")
    assert (
        resolve_url(secret, secrets=lambda scope, key: f"https://{scope}.{key}.invalid")
        == "https://ops.pager.invalid"
    )

    policy = AlertPolicy(webhooks=(hook,))
    d = AlertDispatcher(
        policy,
        sender=post_json,  # port 9 (discard) refuses: the error must not carry the URL
        resolve=lambda h: resolve_url(h, environ={"LJM_HOOK": "http://127.0.0.1:9/T0KEN"}),
        clock=FakeClock(),
        control_table="ctl",
    )
    with caplog.at_level(logging.WARNING, logger="lakeflow_job_meta.alerts"):
        d.submit(FAILED)
        d.close()
    assert d.delivery.failed == 1
    assert "T0KEN" not in caplog.text and "${env:LJM_HOOK}" in caplog.text


def test_slack_and_json_bodies_reach_a_real_sink(sink: Sink) -> None:
    hooks = (Webhook(url=sink.url, format=AlertFormat.SLACK), Webhook(url=sink.url))
    d = AlertDispatcher(
        AlertPolicy(webhooks=hooks),
        sender=post_json,
        resolve=lambda h: h.url,
        clock=FakeClock(),
        control_table="ctl",
    )
    d.submit(Alert(AlertEvent.LAG, "control table", "12 versions behind", recovered=True))
    d.close()
    slack, plain = sink.bodies
    assert slack == {"text": ":white_check_mark: [recovered] lag control table (ctl): 12 versions behind"}
    assert plain["recovered"] is True and plain["event"] == "lag" and plain["control_table"] == "ctl"
