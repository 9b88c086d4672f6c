"""The engine tests' worlds for every test in this folder: ``env`` (a monitor's tables, volume,
emulator and FakeClock) and ``world`` (a control table loaded from the examples, and the emulator).
A module may define its own ``world`` (the bundle target's), which then wins."""

from tests.helpers.monitor_env import env  # noqa: F401
from tests.helpers.workspace_world import world  # noqa: F401
