"""The loop that runs on the outside world: the orchestrator (desired state, compile, lease,
history), the targets (where jobs live), the metadata manager (YAML into rows) and the monitor.
Imports adapters, storage, planning and metadata; never the wiring, the public API or the CLI."""
