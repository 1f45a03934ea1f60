"""Benchmarks of the sensor's serve path (``python -m bench.serve``)."""
