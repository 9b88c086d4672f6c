"""The read-only status page (``lakeflow-job-meta serve``): server-rendered HTML and a JSON API
over the tool's own tables. Needs the ``serve`` extra (Starlette, Jinja2, uvicorn)."""
