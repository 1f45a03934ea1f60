"""netsentry training pipeline: one module per DVC stage, plus the flow schema and I/O helpers."""
