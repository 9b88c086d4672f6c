"""Fixtures of the reliability suite: the reconciler's and the monitor's worlds, reused."""

from tests.engine.test_monitor import env  # noqa: F401
from tests.engine.test_reconciler import world  # noqa: F401
