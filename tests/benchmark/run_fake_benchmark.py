"""``python run_fake_benchmark.py DEF.yaml OUT``: the benchmark runner with fake_fit.py and the fake
evaluation, as its own process (so that a test can kill it)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from gan_suite.benchmark.definition import load_definition  # noqa: E402
from gan_suite.benchmark.runner import BenchmarkRunner  # noqa: E402
from tests.benchmark.helpers import FAKE_FIT, fake_evaluate  # noqa: E402

if __name__ == "__main__":
    runner = BenchmarkRunner(
        load_definition(sys.argv[1]), sys.argv[2], evaluate_fn=fake_evaluate, train_command=FAKE_FIT, devices="cpu", jobs=1,
    )
    try:
        print(runner.run(), flush=True)
    except KeyboardInterrupt:
        os._exit(130)
