"""``python -m lakeflow_job_meta`` runs the CLI."""

from lakeflow_job_meta.cli.main import entry

entry()
