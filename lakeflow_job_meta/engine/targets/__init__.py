"""Where jobs go: the :class:`~lakeflow_job_meta.engine.targets.base.Target` protocol and its two
implementations, the workspace (Jobs API) and a bundle folder (files)."""
