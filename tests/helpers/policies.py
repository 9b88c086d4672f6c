"""A sample identity and code policy: a run_as allow-list with a service principal as the default
(a user in ``dev``), two code path prefixes and a default permission."""

from __future__ import annotations

SP = "9f8e7d6c-0000-1111-2222-333344445555"
SAMPLE_POLICY = f"""
run_as:
  allowed: [etl-prod@example.com, {SP}]
  default: {{service_principal_name: {SP}}}
code_paths:
  allowed_prefixes: [/Workspace/Shared/, /Volumes/main/]
permissions:
  default: [{{group_name: data-eng, permission_level: CAN_VIEW}}]
environments:
  dev:
    run_as:
      default: {{user_name: etl-prod@example.com}}
"""
