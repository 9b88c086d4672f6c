"""One cheap authenticated call before planning against a workspace.

Without it, an unreachable host or a bad token surfaces only after the SDK's retry budget, as a
plan that could not read anything (`Plan: 1 to create` after 52 s against a dead host). With it,
the CLI fails within about 20 s with one line naming the host, never the token.
"""

from __future__ import annotations

import re
import socket
from typing import Any
from urllib.parse import urlsplit

from databricks.sdk.errors import DatabricksError, PermissionDenied, Unauthenticated

from lakeflow_job_meta.errors import ConfigurationError

# Budgets (the SDK retries connection errors until the deadline, then finishes its last wait,
# so each step can overrun its budget by a few seconds; together they stay well under 30 s):
# the host-metadata probe the SDK makes while building a client (best effort: on failure it
# falls back to the explicit configuration), then the preflight call.
HOST_PROBE_RETRY_TIMEOUT_SECONDS = 1
HOST_PROBE_HTTP_TIMEOUT_SECONDS = 5
# A plain TCP connection first: a refused port or an unknown name fails in milliseconds instead
# of after the SDK's retries.
CONNECT_TIMEOUT_SECONDS = 5
PREFLIGHT_RETRY_TIMEOUT_SECONDS = 5
PREFLIGHT_HTTP_TIMEOUT_SECONDS = 8
# The preflight lists jobs by a name no job has: the name filter is an indexed lookup, so the
# call proves the same (credentials, permission to list jobs) at the cost of a job read, not of
# a listing page (a full page costs the service, and the CLI's fake workspace, far more).
PREFLIGHT_JOB_NAME = "lakeflow_job_meta preflight: no job has this name"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else error.__class__.__name__


def _network_reason(error: BaseException) -> str:
    """``connection refused`` rather than urllib3's nested repr of the pool and the URL."""
    cause = error.__cause__ or error.__context__ or error
    text = str(cause)
    errno = re.search(r"\[Errno -?\d+\] ([^\"'()]+)", text)
    if errno:
        return errno.group(1).strip().rstrip(".").lower()
    if isinstance(error, TimeoutError) or "timed out" in text.lower():
        return f"no answer within {PREFLIGHT_RETRY_TIMEOUT_SECONDS} s"
    return _first_line(cause)


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _connect(host: str) -> None:
    """Open and close a TCP connection to the host's port (OSError when it cannot)."""
    parts = urlsplit(host)
    if not parts.hostname:
        raise ValueError(f"not a URL: {host!r}")
    port = parts.port or (80 if parts.scheme == "http" else 443)
    socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_SECONDS).close()


def check_access(client: Any) -> None:
    """Connect, then list jobs by a name none has: proves the host answers, the credentials
    work and jobs may be listed. Raises ConfigurationError (exit 2) naming the host."""
    host = str(client.config.host or "").rstrip("/") or "(no host configured)"
    token = getattr(client.config, "token", None)
    try:
        _connect(host)
        next(iter(client.jobs.list(name=PREFLIGHT_JOB_NAME, limit=1)), None)
    except Unauthenticated as error:
        message = f"the Databricks workspace {host} refused the credentials: {_first_line(error)}"
    except PermissionDenied as error:
        message = f"no permission to list jobs in the Databricks workspace {host}: {_first_line(error)}"
    except DatabricksError as error:
        message = f"the Databricks workspace {host} answered with an error: {_first_line(error)}"
    except (OSError, ValueError) as error:  # TimeoutError, connection errors; ValueError: bad URL
        message = f"cannot reach the Databricks workspace {host}: {_network_reason(error)}"
    else:
        return
    raise ConfigurationError(_scrub(message, token))
