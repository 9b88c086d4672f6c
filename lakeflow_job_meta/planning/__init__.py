"""Pure translation of valid metadata into Jobs API settings, the spec hash and the per-module
plan. Imports only ``metadata/`` and the leaf modules: no SDK, no tables, no files."""
