"""`python -m bench.pipeline`: wall time and peak RSS of `dvc repro` on a full-size synthetic set."""

import sys

from bench.pipeline.run import main

sys.exit(main())
