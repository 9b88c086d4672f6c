"""Helpers shared by several test modules (never shipped, never collected: no ``test_`` names).

A test module imports from here or gets a fixture from a ``conftest.py``; it never imports from
another test module. ``waiting.py`` is the one place that waits on the real clock."""
