"""``python -m lakeflow_job_meta`` runs the CLI."""

import sys

from lakeflow_job_meta.cli.main import main

sys.exit(main())
