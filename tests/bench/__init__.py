"""Tests of the benchmarks' own code (the benchmarks themselves are not run by the suite)."""
