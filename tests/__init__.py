"""netsentry test suite (a package so tests/pipeline does not shadow the pipeline package)."""
