"""Mutation testing of the core modules with cosmic-ray, each against only the tests that cover it.

Usage (from the repository root; ``make mutation`` runs every module)::

    python tools/mutation.py [NAME ...]      # names from MODULES below; none: all of them
    python tools/mutation.py --retest-survivors NAME   # after adding tests

For each module cosmic-ray writes one mutant at a time into the source file, runs the module's
tests, and restores the file. A mutant is *killed* when the tests fail (or time out) and
*survives* when they pass. Sessions and the summary go to runs/mutation/ (summary.md); a session
that was interrupted resumes where it stopped. Mutants that only differ from the code where no
test can see it (equivalent mutants) are listed with reasons in docs/mutation.md.

cosmic-ray is used because it runs an arbitrary test command per module, which is how each
module gets its own (fast) test selection.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "runs" / "mutation"

# name -> (source file, pytest arguments selecting the tests that cover it)
MODULES: dict[str, tuple[str, str]] = {
    "losses": ("gan_suite/losses.py", "tests/training/test_losses.py"),
    "ema": ("gan_suite/training/ema.py", "tests/training/test_module.py -k ema"),
    "schedules": ("gan_suite/training/schedules.py", "tests/training/test_schedules.py"),
    "dcgan": ("gan_suite/nets/dcgan.py", "tests/training/test_nets.py"),
    "mlp": ("gan_suite/nets/mlp.py", "tests/training/test_nets.py"),
    "packing": ("gan_suite/nets/packing.py", "tests/training/test_nets.py"),
    "toy2d": ("gan_suite/data/toy2d.py", "tests/data/test_data_bundled_toy.py -k toy2d"),
    "training_step": (
        "gan_suite/training/module.py",
        "tests/training/test_module.py tests/training/test_schedules.py tests/training/test_stacked_seeds.py tests/training/test_step_references.py tests/training/test_conditional.py -k 'not short_training'",
    ),
    "fid": ("gan_suite/evaluation/metrics/fid.py", "tests/evaluation/test_metrics_fid.py tests/evaluation/test_fid_reference.py"),
    "kid": (
        "gan_suite/evaluation/metrics/kid.py",
        "tests/evaluation/test_metrics_vs_torch_fidelity.py tests/evaluation/test_metrics_from_formulas.py",
    ),
    "inception_score": (
        "gan_suite/evaluation/metrics/inception_score.py",
        "tests/evaluation/test_metrics_vs_torch_fidelity.py tests/evaluation/test_metrics_from_formulas.py",
    ),
    "precision_recall": (
        "gan_suite/evaluation/metrics/precision_recall.py",
        "tests/evaluation/test_metrics_vs_torch_fidelity.py tests/evaluation/test_metric_wiring.py "
        "tests/evaluation/test_precision_recall_reference.py",
    ),
    "density_coverage": (
        "gan_suite/evaluation/metrics/density_coverage.py",
        "tests/evaluation/test_metrics_density_coverage.py tests/evaluation/test_metric_wiring.py "
        "tests/evaluation/test_density_coverage_reference.py",
    ),
    "knn": (
        "gan_suite/evaluation/metrics/knn.py",
        "tests/evaluation/test_knn.py tests/evaluation/test_metrics_density_coverage.py",
    ),
    "modes": (
        "gan_suite/evaluation/metrics/modes.py",
        "tests/evaluation/test_metrics_modes.py tests/evaluation/test_mode_coverage_test.py "
        "tests/evaluation/test_modes_reference.py",
    ),
    "memorisation": (
        "gan_suite/evaluation/metrics/memorisation.py",
        "tests/evaluation/test_metrics_memorisation.py tests/evaluation/test_metric_wiring.py "
        "tests/evaluation/test_memorisation_reference.py tests/evaluation/test_memorisation_copy_wiring.py",
    ),
    "report": ("gan_suite/benchmark/report.py", "tests/benchmark/test_report.py tests/benchmark/test_report_numbers.py"),
    "plots": ("gan_suite/benchmark/plots.py", "tests/benchmark/test_report.py"),
}

# Modules of which only some functions are core: mutants elsewhere in the file are skipped.
ONLY_DEFINITIONS: dict[str, set[str]] = {
    "report": {"mean", "std", "cell_parts", "_decimals", "_format_number"},  # the table's mean and std
    "training_step": {
        "_training_step", "_discriminator_update", "_generator_update", "forward", "_raise_if_nonfinite", "_draw_random",
        "_draw_from_stream", "_sample_mix", "_clip_gradients", "_record_divergence", "_stacked_networks", "_fixed_noise",
    },
}

# Operators left out: replacing arithmetic on tensors with bit operations, shifts, // or %, signs
# with ~ or `not`, and comparisons with `is` only raise TypeErrors (always killed, and slow to run); they add
# nothing a test writer can act on.
EXCLUDED_OPERATORS = [
    r"core/ReplaceBinaryOperator_.*_(BitOr|BitAnd|BitXor|LShift|RShift|FloorDiv|Mod)$",
    r"core/ReplaceBinaryOperator_(BitOr|BitAnd|BitXor|LShift|RShift|FloorDiv|Mod)_.*",
    r"core/ReplaceComparisonOperator_(Eq|NotEq|Lt|LtE|Gt|GtE)_(Is|IsNot)$",
    r"core/ReplaceComparisonOperator_(Is|IsNot)_(Eq|NotEq|Lt|LtE|Gt|GtE)$",
    r"core/ReplaceUnaryOperator_(UAdd|USub)_(Invert|Not)$",
]

TIMEOUT_S = 300.0


def _config(source: str, tests: str) -> str:
    command = f"{sys.executable} -m pytest -x -q -p no:cacheprovider {tests}"
    excluded = ", ".join(json.dumps(e) for e in EXCLUDED_OPERATORS)
    return (
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(source)}\n"
        f"timeout = {TIMEOUT_S}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{excluded}]\n"
    )


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def run_module(name: str, retest_survivors: bool = False) -> dict:
    """Run (or resume) the session of one module; return its counts and surviving mutants.

    With ``retest_survivors`` the surviving mutants of the last session are tested again (with
    the current test selection) and killed ones are kept: how a session is updated after adding
    tests. Otherwise a changed configuration starts a fresh session.
    """
    source, tests = MODULES[name]
    config, session = OUT_DIR / f"{name}.toml", OUT_DIR / f"{name}.sqlite"
    text = _config(source, tests)
    if retest_survivors and session.exists():
        before = OUT_DIR / f"{name}.before.json"
        if not before.exists():
            before.write_text(json.dumps(summarise(name, session), indent=1))
        config.write_text(text)
        with sqlite3.connect(session) as db:
            db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
    elif not session.exists() or not config.exists() or config.read_text() != text:
        config.write_text(text)
        session.unlink(missing_ok=True)
        subprocess.run([_tool("cosmic-ray"), "init", str(config), str(session)], check=True, cwd=REPO_ROOT)
        subprocess.run([_tool("cr-filter-pragma"), str(session)], check=True, cwd=REPO_ROOT)
        subprocess.run([_tool("cr-filter-operators"), str(session), str(config)], check=True, cwd=REPO_ROOT)
        if name in ONLY_DEFINITIONS:
            _skip_other_definitions(session, ONLY_DEFINITIONS[name])
    try:
        subprocess.run([_tool("cosmic-ray"), "exec", str(config), str(session)], check=True, cwd=REPO_ROOT)
    finally:  # an interrupted run must not leave a mutant in the source tree
        subprocess.run(["git", "checkout", "--", source], check=True, cwd=REPO_ROOT)
    return summarise(name, session)


def _skip_other_definitions(session: Path, keep: set[str]) -> None:
    """Mark pending mutants outside the functions ``keep`` as skipped (cosmic-ray filters by
    operator, line or pragma, not by function)."""
    with sqlite3.connect(session) as db:
        pending = db.execute(
            "SELECT m.job_id, m.definition_name FROM mutation_specs m "
            "LEFT JOIN work_results r ON r.job_id = m.job_id WHERE r.job_id IS NULL"
        ).fetchall()
        db.executemany(
            "INSERT INTO work_results (worker_outcome, output, job_id) VALUES ('SKIPPED', 'outside the selected functions', ?)",
            [(job,) for job, definition in pending if definition not in keep],
        )


def summarise(name: str, session: Path) -> dict:
    dump = subprocess.run([_tool("cosmic-ray"), "dump", str(session)], check=True, capture_output=True, text=True)
    counts = {"killed": 0, "survived": 0, "skipped": 0, "incompetent": 0, "pending": 0}
    survivors = []
    for line in dump.stdout.splitlines():
        item, result = json.loads(line)
        if result is None:
            counts["pending"] += 1
        elif result["worker_outcome"] == "skipped":
            counts["skipped"] += 1
        elif result["worker_outcome"] != "normal":
            counts["incompetent"] += 1
        elif result["test_outcome"] == "survived":
            counts["survived"] += 1
            m = item["mutations"][0]
            where = f"{m['module_path']}:{m['start_pos'][0]} {m['operator_name']} #{m['occurrence']}"
            changed = [ln for ln in (result.get("diff") or "").splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
            survivors.append(f"{where}: {' / '.join(ln.strip() for ln in changed)}")
        else:
            counts["killed"] += 1
    tested = counts["killed"] + counts["survived"]
    return {"name": name, **counts, "killed_share": counts["killed"] / tested if tested else None, "survivors": survivors}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"modules to mutate, from {', '.join(MODULES)} (default: all)")
    parser.add_argument(
        "--retest-survivors", action="store_true",
        help="test the last session's surviving mutants again (after adding tests); keep the killed ones",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    lines = ["| module | killed | survived | killed share |", "| --- | --- | --- | --- |"]
    for name in args.names or list(MODULES):
        result = run_module(name, args.retest_survivors)
        (OUT_DIR / f"{name}.json").write_text(json.dumps(result, indent=1))
        share = "-" if result["killed_share"] is None else f"{100 * result['killed_share']:.0f}%"
        lines.append(f"| {name} | {result['killed']} | {result['survived']} | {share} |")
        print("\n".join(lines[-1:] + [f"  survivor: {s}" for s in result["survivors"]]), flush=True)
    (OUT_DIR / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
