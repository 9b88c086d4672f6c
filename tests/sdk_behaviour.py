"""What the installed databricks-sdk does where its releases differ, read from the SDK itself.

pyproject.toml allows a range of releases and CI tests both ends of it (``.ci/sdk_floor.sh``),
so a test about such a behaviour asserts what the installed release does, never one release's
behaviour for all.
"""

from __future__ import annotations

from databricks.sdk import _base_client
from databricks.sdk.config import Config
from databricks.sdk.version import __version__ as SDK_VERSION

# From 0.167.0 (`_base_client.py`: `_NON_IDEMPOTENT_HTTP_METHODS = frozenset({"POST"})`) a POST
# whose read timed out is not resent: the SDK raises the timeout. Earlier releases resend it, so
# a `jobs/create` whose reply was slow lands twice.
RESENDS_POST_AFTER_READ_TIMEOUT = "POST" not in getattr(_base_client, "_NON_IDEMPOTENT_HTTP_METHODS", ())

# Newer releases GET /.well-known/databricks-config while building a client (0.54.0 does not).
PROBES_HOST_METADATA = hasattr(Config, "_resolve_host_metadata")

__all__ = ["PROBES_HOST_METADATA", "RESENDS_POST_AFTER_READ_TIMEOUT", "SDK_VERSION"]
