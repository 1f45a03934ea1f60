"""Benchmarks for netsentry (not part of the installed package; run with `python -m bench.<name>`)."""
