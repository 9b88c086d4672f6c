"""Metadata: what valid metadata is (the YAML reader, parsing, schema, every rule and limit) and
its models. Pure: no SDK, Spark or deltalake imports, nothing of the other folders."""
