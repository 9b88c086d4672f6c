"""Alert delivery over HTTP: resolve a webhook's URL reference, shape the body, POST it.

The URL is read from the environment or a Databricks secret scope at each send and never kept,
logged or put in an exception: a Slack hook's path is its token. Errors name the webhook's
label and the HTTP status only.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.metadata.policy import SECRET_REFERENCE, Webhook
from lakeflow_job_meta.planning.alerts import Alert
from lakeflow_job_meta.vocabulary import AlertFormat

SEND_TIMEOUT_SECONDS = 10.0
# secret scope, key -> value
SecretReader = Callable[[str, str], str]
Sender = Callable[[str, bytes], int]


class WebhookError(Exception):
    """A delivery failed; the message never holds the URL."""


def resolve_url(
    webhook: Webhook, *, environ: Mapping[str, str] | None = None, secrets: SecretReader | None = None
) -> str:
    """The URL to POST to: the literal one, or the environment variable or secret it names."""
    match = SECRET_REFERENCE.match(webhook.url)
    if match is None:
        return webhook.url
    if match.group("env"):
        value = (environ if environ is not None else os.environ).get(match.group("env"), "")
        if not value:
            raise ConfigurationError(f"{webhook.label}: environment variable {match.group('env')} is not set")
        return value
    if secrets is None:
        raise ConfigurationError(f"{webhook.label}: no secret scope reader (needs a Databricks workspace)")
    return secrets(match.group("scope"), match.group("key"))


def workspace_secret_reader(client: Any) -> SecretReader:
    """Secrets through the SDK (``secrets.get_secret`` returns the value base64-encoded)."""

    def read(scope: str, key: str) -> str:
        reply = client.secrets.get_secret(scope=scope, key=key)
        return base64.b64decode(reply.value or "").decode("utf-8")

    return read


def alert_body(alert: Alert, webhook: Webhook, *, control_table: str, at: str) -> bytes:
    """Slack's ``{"text"}`` (Slack, Teams and Mattermost incoming webhooks read it) or the
    alert as plain JSON for anything else."""
    if webhook.format == AlertFormat.SLACK:
        icon = ":white_check_mark:" if alert.recovered else ":rotating_light:"
        document: dict[str, Any] = {
            "text": f"{icon} {alert.title} ({control_table}): {alert.message}",
        }
    else:
        document = {**alert.as_dict(), "control_table": control_table, "at": at}
    return json.dumps(document, sort_keys=True).encode("utf-8")


def post_json(url: str, body: bytes, *, timeout: float = SEND_TIMEOUT_SECONDS) -> int:
    """POST ``body`` as JSON; the HTTP status, or WebhookError (without the URL)."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # http(s) only: checked by the policy
            return int(reply.status)
    except urllib.error.HTTPError as error:
        raise WebhookError(f"HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise WebhookError(f"{reason.__class__.__name__}") from None
