"""Metadata models, parsing and validation. Pure: no SDK, Spark or deltalake imports."""
