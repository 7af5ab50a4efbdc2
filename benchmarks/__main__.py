"""``python -m benchmarks``: the benchmark harness (see benchmarks/run.py)."""

import sys

from .run import main

sys.exit(main())
