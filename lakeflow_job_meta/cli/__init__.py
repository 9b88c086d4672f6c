"""The command line: arguments, the exception-to-exit-code table, the logging setup, output."""
