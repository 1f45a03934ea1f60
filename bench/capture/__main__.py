"""`python -m bench.capture`: offline throughput of the flow meter against its anchors."""

import sys

from bench.capture.offline import main

sys.exit(main())
