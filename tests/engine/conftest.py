"""The monitor tests' world (``env``: tables, a volume, the emulator, FakeClock) for every test
in this folder."""

from tests.engine.test_monitor import env  # noqa: F401
