"""The policy's ``alerts:`` section: webhooks, formats, events, and no secret written in YAML."""

from __future__ import annotations

import pytest

from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.metadata.policy import parse_policy
from lakeflow_job_meta.vocabulary import AlertEvent, AlertFormat


def test_webhooks_with_references_formats_and_events() -> None:
    policy = parse_policy(
        "alerts:\n"
        "  max_per_minute: 5\n"
        "  webhooks:\n"
        "    - url: ${env:SLACK_URL}\n"
        "      format: slack\n"
        "      events: [run_failed, apply_failed]\n"
        "    - url: ${secret:ops/pager}\n"
        "    - url: https://alerts.internal.example.com/ljm\n",
        "policy.yaml",
    )
    slack, pager, plain = policy.alerts.webhooks
    assert slack.format == AlertFormat.SLACK and slack.events == {
        AlertEvent.RUN_FAILED,
        AlertEvent.APPLY_FAILED,
    }
    assert not slack.wants(AlertEvent.LAG) and pager.wants(AlertEvent.LAG)
    assert pager.format == AlertFormat.JSON and plain.label == "webhook"
    assert slack.label == "${env:SLACK_URL}"
    assert policy.alerts.max_per_minute == 5


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
        "https://user:XXXXSECRET@example.com/hook",
        "https://example.com/hook?token=XXXXSECRET",
    ],
)
def test_a_literal_url_carrying_a_secret_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_policy(f"alerts:\n  webhooks:\n    - url: {url}\n", "policy.yaml")
    message = str(caught.value)
    assert "policy.yaml:3" in message and "${env:NAME}" in message
    assert "XXXXSECRET" not in message


def test_unknown_events_and_formats_name_the_line() -> None:
    with pytest.raises(ConfigurationError, match=r"policy.yaml:4: .*unknown event 'run_exploded'"):
        parse_policy(
            "alerts:\n  webhooks:\n    - url: ${env:X}\n      events: [run_exploded]\n", "policy.yaml"
        )
    with pytest.raises(ConfigurationError, match="must be one of"):
        parse_policy("alerts:\n  webhooks:\n    - url: ${env:X}\n      format: teams\n", "policy.yaml")
