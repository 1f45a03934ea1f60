"""Tests of the C flow meter (capture/)."""
