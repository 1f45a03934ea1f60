"""Run NFStream over one capture and print a JSON summary (runs inside bench/out/anchors-venv).

Usage: python nfstream_run.py FILE
Stand-alone on purpose (no project imports): the anchors venv has only the anchor packages.
Settings as in the benchmark brief: statistical features on, no nDPI dissection, one meter.
"""

import json
import sys
import time


def main() -> int:
    """Stream every flow of sys.argv[1] and print {"flows", "packets", "seconds"}."""
    from nfstream import NFStreamer

    t0 = time.monotonic()
    flows = packets = 0
    streamer = NFStreamer(source=sys.argv[1], statistical_analysis=True, n_dissections=0, n_meters=1)
    for flow in streamer:
        flows += 1
        packets += flow.bidirectional_packets
    print(json.dumps({"flows": flows, "packets": packets, "seconds": time.monotonic() - t0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
