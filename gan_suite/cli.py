"""The ``gan-suite`` command.

``gan-suite fit --config configs/NAME.yaml`` is Lightning's CLI (:mod:`gan_suite.training.lightning_cli`: dotted overrides,
``--print_config``); the other sub-commands (``evaluate``, ``benchmark``, ``report``) are plain
argparse programs registered in :data:`COMMANDS`. ``gan-suite --help`` lists them all without
importing torch.

Every error ends the program through one path (:func:`main`): one line ``gan-suite: error: ...``
on stderr, exit code 2 for what the user can fix (bad options, files, values; see
:func:`gan_suite.errors.one_line`) and 1 for anything unexpected. ``--debug`` anywhere on the
command line, or ``GAN_SUITE_DEBUG=1``, shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Callable, Optional, Sequence

#: extra sub-commands: name -> "module:function" taking the remaining argv, returning an exit code.
COMMANDS: dict[str, str] = {
    "evaluate": "gan_suite.evaluation.evaluate_cli:main",
    "benchmark": "gan_suite.benchmark.cli:benchmark_main",
    "report": "gan_suite.benchmark.cli:report_main",
}

#: one line per sub-command, for ``gan-suite --help``
SUMMARIES: dict[str, str] = {
    "fit": "train a GAN from a config (LightningCLI: --config FILE, dotted overrides, --print_config)",
    "evaluate": "FID, IS, KID, precision/recall, copying and mode-collapse tests of a checkpoint",
    "benchmark": "train and evaluate every variant x seed of a benchmark definition (resumable)",
    "report": "tables and plots of a benchmark's results, beside the published numbers",
}


def top_level_help() -> str:
    """``gan-suite --help``: the sub-commands, one line each."""
    from gan_suite import __version__

    width = max(map(len, SUMMARIES))
    lines = [f"usage: gan-suite {{{','.join(SUMMARIES)}}} ... [--debug]", "", f"gan_suite {__version__}: train and compare GANs honestly.", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {summary}" for name, summary in SUMMARIES.items()]
    lines += ["", "gan-suite COMMAND --help shows a command's options; --debug (or GAN_SUITE_DEBUG=1) shows tracebacks."]
    return "\n".join(lines)


def _resolve(target: str) -> Callable[[Sequence[str]], Optional[int]]:
    module_name, _, func = target.partition(":")
    return getattr(importlib.import_module(module_name), func)


def debug_requested() -> bool:
    """True when ``GAN_SUITE_DEBUG`` is set to anything but '' or '0'."""
    return os.environ.get("GAN_SUITE_DEBUG", "") not in ("", "0")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``gan-suite`` and ``python -m gan_suite``; returns the exit code.

    Errors: one line ``gan-suite: error: ...`` on stderr, exit 2 (user's to fix) or 1 (unexpected);
    with ``--debug`` or ``GAN_SUITE_DEBUG=1`` the exception propagates with its traceback.
    """
    from gan_suite.errors import one_line

    from_sys = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested() or "--debug" in argv
    if "--debug" in argv:
        argv = [a for a in argv if a != "--debug"]
        from_sys = False
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print(top_level_help())
            return 0
        if argv[0] == "--version":
            from gan_suite import __version__

            print(f"gan-suite {__version__}")
            return 0
        if not argv[0].startswith("-") and argv[0] not in SUMMARIES and argv[0] not in COMMANDS:
            from gan_suite.errors import UsageError

            raise UsageError(f"unknown command {argv[0]!r}; commands: {', '.join(SUMMARIES)} (gan-suite --help)")
        if argv and argv[0] in COMMANDS:
            return int(_resolve(COMMANDS[argv[0]])(argv[1:]) or 0)
        from gan_suite.training.lightning_cli import run_fit

        run_fit(sys.argv[1:] if from_sys else argv)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        if debug:
            raise
        print("gan-suite: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the one place where errors become messages
        if debug:
            raise
        code, message = one_line(err)
        print(f"gan-suite: error: {message}", file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
