"""Start-up time of the ``gan-suite`` commands: wall seconds until ``--help`` has answered.

Each command runs ``--repeats`` times in a fresh process (interleaved across commands); the
minimum is printed. With ``--baseline TREE`` the same commands also run from another checkout
of the package (``PYTHONPATH=TREE``), interleaved with this one, and the ratio is printed.

    python benchmarks/perf/startup.py [--baseline /path/to/older/checkout] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

COMMANDS = (["--help"], ["evaluate", "--help"], ["report", "--help"], ["benchmark", "--help"], ["fit", "--help"])
HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def seconds(tree: str, args: list) -> float:
    env = {**os.environ, "PYTHONPATH": tree}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gan_suite", *args], env=env, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default=None, help="another checkout of the repository to compare with")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    trees = {"this": HERE, **({"baseline": os.path.abspath(args.baseline)} if args.baseline else {})}
    best = {(name, i): float("inf") for name in trees for i in range(len(COMMANDS))}
    for _ in range(args.repeats):
        for i, command in enumerate(COMMANDS):
            for name, tree in trees.items():
                best[name, i] = min(best[name, i], seconds(tree, list(command)))
    print("| command | " + " | ".join(f"{n} s" for n in trees) + (" | baseline / this |" if args.baseline else " |"))
    print("| --- | " + " | ".join("---:" for _ in trees) + (" | ---: |" if args.baseline else " |"))
    for i, command in enumerate(COMMANDS):
        row = [f"{best[n, i]:.2f}" for n in trees]
        ratio = f" | {best['baseline', i] / best['this', i]:.1f}x" if args.baseline else ""
        print(f"| `gan-suite {' '.join(command)}` | " + " | ".join(row) + ratio + " |")


if __name__ == "__main__":
    main()
