"""The status page as a Databricks App: ``python -m lakeflow_job_meta.web.databricks_app``
(``examples/monitor_bundle/status_app/app.yaml``).

The App platform gives the port (``DATABRICKS_APP_PORT``) and the App's own credentials (the
SDK's unified auth reads them from the environment); ``LJM_CONTROL_TABLE`` names the control
table and ``LJM_WAREHOUSE_ID`` the SQL warehouse bound as an App resource. The tables are read
through that warehouse: an App has no Spark session.
"""

from __future__ import annotations

import os
import sys

from lakeflow_job_meta.errors import ConfigurationError

PORT_VARIABLE, TABLE_VARIABLE, WAREHOUSE_VARIABLE = (
    "DATABRICKS_APP_PORT",
    "LJM_CONTROL_TABLE",
    "LJM_WAREHOUSE_ID",
)


def warehouse_app(control_table: str, warehouse_id: str, client: object | None = None) -> object:
    """The status page over ``control_table`` read through the warehouse ``warehouse_id``."""
    from lakeflow_job_meta.adapters.sql_warehouse import statement_executor, warehouse_tables
    from lakeflow_job_meta.web.serve import create_app

    if client is None:
        from databricks.sdk import WorkspaceClient

        client = WorkspaceClient()
    tables = warehouse_tables(control_table, statement_executor(client, warehouse_id))
    # The App's own client also reads a workspace job's live settings for its pending diff.
    return create_app(control_table, tables=tables, workspace=lambda: client)


def main() -> int:
    from lakeflow_job_meta.web.serve import serve

    missing = [name for name in (TABLE_VARIABLE, WAREHOUSE_VARIABLE) if not os.environ.get(name)]
    if missing:
        raise ConfigurationError(f"set {' and '.join(missing)} (app.yaml's env)")
    app = warehouse_app(os.environ[TABLE_VARIABLE], os.environ[WAREHOUSE_VARIABLE])
    serve(app, host="0.0.0.0", port=int(os.environ.get(PORT_VARIABLE, "8000")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
