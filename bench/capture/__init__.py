"""Benchmarks of the C flow meter `capture/flowmeter`: offline throughput against anchors, live capture.

`python -m bench.capture` runs the offline comparison, `python -m bench.capture.live_veth` the live one.
"""
