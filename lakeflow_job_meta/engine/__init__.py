"""Engine: the orchestrator (plan/apply), the metadata manager and the monitor loop."""
