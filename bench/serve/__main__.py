"""`python -m bench.serve`: flows/s of the serve path (parse + predict + verdicts + write) on one core."""

import os
import sys

# one core: no thread pools anywhere (set before numpy/onnxruntime/pyarrow are imported)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

from bench.serve.run import main  # noqa: E402

sys.exit(main())
