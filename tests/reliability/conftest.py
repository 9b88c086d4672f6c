"""Fixtures of the reliability suite: the engine tests' worlds (``tests/helpers``), reused."""

from tests.helpers.monitor_env import env  # noqa: F401
from tests.helpers.workspace_world import world  # noqa: F401
