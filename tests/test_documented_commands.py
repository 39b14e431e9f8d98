"""Every command in README.md and docs/*.md runs (shortened), so a documented path or flag that
stops working fails the suite.

Commands are the lines of ```bash blocks and inline code that starts with ``gan-suite``,
``python benchmarks/`` or ``python -m gan_suite``. They run in order, in a fresh working
directory that holds only ``configs/`` and ``benchmarks/`` (links to the repository's), so a
command may use what an earlier one wrote (``make quickstart``'s run, then its evaluation). How a
command is run:

* ``make T``: ``make -n T`` succeeds in the repository; the ``gan-suite`` lines it would run are
  run here, shortened.
* ``gan-suite fit``: trained for 4 optimizer updates (8 when resuming); commands that need more
  than this machine (``--trainer.devices`` > 1) or data that cannot be downloaded here are
  parsed and their model and data module built (:func:`check_fit_arguments`) instead.
* ``gan-suite evaluate``: 300 samples. ``gan-suite benchmark``: ``--dry-run`` (the definition,
  every variant's overrides and the commands are checked). ``gan-suite report DIR``: run when
  DIR holds results, else its options are checked against ``--help``.
* Templates (placeholders such as ``CKPT``, ``DIR``, ``<run id>``, ``[...]``, ``a|b``), commands
  for a GPU (``cuda``), python scripts and ``wandb`` commands: the program answers ``--help`` and
  every option the command names appears in that help. ``sbatch --wrap '...'``: the wrapped command, by these rules.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from gan_suite.cli import main
from gan_suite.errors import DataUnavailableError
from tests.conftest import REPO_ROOT

DOC_FILES = [os.path.join(REPO_ROOT, "README.md")] + sorted(glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")))
PROGRAMS = ("gan-suite", "python", "make", "wandb", "sbatch")
_PLACEHOLDER = re.compile(r"<[^>]+>|\[|\]|\.\.\.|\||\b[A-Z][A-Z0-9_]*(\.yaml|\.ckpt)?\b(?![=\w])")


def documented_commands() -> list[tuple[str, str]]:
    """(file name, command) in document order: ```bash lines, then command-like inline code."""
    found = []
    for path in DOC_FILES:
        text = open(path).read()
        for block in re.finditer(r"```bash\n(.*?)```", text, re.S):
            joined = re.sub(r"\\\n\s*", " ", block.group(1))
            for line in joined.splitlines():
                command = _strip_comment(line.strip())
                if command.split(" ", 1)[0] in PROGRAMS:
                    found.append((os.path.basename(path), command))
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for span in re.finditer(r"`([^`\n]+)`", prose):
            command = span.group(1).strip()
            if re.match(r"(gan-suite \w+ \S|python benchmarks/|python -m gan_suite)", command):
                found.append((os.path.basename(path), command))
    return found


def _strip_comment(line: str) -> str:
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] == " "):
            break
        out.append(ch)
    return "".join(out).strip()


def is_template(command: str) -> bool:
    words = [w for w in command.split() if not w.startswith("--") or "=" not in w]
    return any(_PLACEHOLDER.search(w) for w in words[1:]) or "|" in command


def _options(command: str) -> list[str]:
    return sorted({m.group(1) for m in re.finditer(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", command)} - {"--help"})


def _help_text(program: list[str], cwd: str) -> str:
    proc = subprocess.run(program + ["--help"], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert proc.returncode == 0, (program, proc.stderr[-2000:])
    return proc.stdout


def _shortened_fit(argv: list[str]) -> list[str]:
    resuming = any(a.startswith("--ckpt_path") for a in argv)
    kept = [a for a in argv if not a.startswith(("--trainer.max_steps", "--trainer.enable_progress_bar"))]
    return kept + [f"--trainer.max_steps={8 if resuming else 4}", "--trainer.enable_progress_bar=false", "--checkpoint.every_n_train_steps=2"]


def _shortened_evaluate(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--num-samples":
            skip = True
            continue
        if not a.startswith("--num-samples="):
            out.append(a)
    return out + ["--num-samples", "300", "--no-progress"]


class Runner:
    """Runs documented commands in one fresh working directory (see the module docstring)."""

    def __init__(self, workdir: str, monkeypatch, capsys) -> None:
        self.workdir, self.monkeypatch, self.capsys = workdir, monkeypatch, capsys
        self.helps: dict = {}

    def gan_suite(self, argv: list[str], source: str) -> None:
        from gan_suite.training.lightning_cli import check_fit_arguments

        command, rest = argv[0], argv[1:]
        if "--help" in rest:
            with pytest.raises(SystemExit) as done:
                main(argv)
            assert done.value.code in (0, None) and "usage" in self.capsys.readouterr().out.lower(), source
            return
        if command == "fit":
            if "--print_config" in rest:
                with pytest.raises(SystemExit) as done:
                    main(argv)
                assert done.value.code in (0, None), source
                return
            devices = next((a.split("=", 1)[1] for a in rest if a.startswith("--trainer.devices=")), "1")
            if devices.isdigit() and int(devices) > 1:
                check_fit_arguments(rest)
                return
            try:
                code = main(["fit", *_shortened_fit(rest), "--debug"])
            except DataUnavailableError:
                return  # parsed and built above; its data cannot be downloaded here
            assert code == 0, source
        elif command == "evaluate" and "--list-metrics" in rest:
            with pytest.raises(SystemExit) as done:
                main(argv)
            assert done.value.code in (0, None) and "memorisation" in self.capsys.readouterr().out, source
        elif command == "evaluate":
            assert main(["evaluate", *_shortened_evaluate(rest)]) == 0, (source, self.capsys.readouterr().err[-2000:])
        elif command == "benchmark":
            assert main(["benchmark", *rest, "--dry-run", "--quiet"]) == 0, (source, self.capsys.readouterr().err[-2000:])
        elif command == "report":
            folder = rest[0] if rest and not rest[0].startswith("-") else None
            if folder and glob.glob(os.path.join(folder, "runs", "*", "result.json")):
                assert main(argv) == 0, source
            else:
                self.options_in_help(["gan-suite", *argv], source)
        else:
            raise AssertionError(f"{source}: unknown gan-suite command {command!r}")
        self.capsys.readouterr()

    def options_in_help(self, words: list[str], source: str) -> None:
        if words[0] == "gan-suite":
            program = [sys.executable, "-m", "gan_suite", words[1]]
        elif words[0] == "python" and words[1] == "-m":
            program = [sys.executable, "-m", words[2]] + ([words[3]] if words[2] == "gan_suite" and len(words) > 3 else [])
        elif words[0] == "python":
            script = os.path.join(REPO_ROOT, words[1])
            assert os.path.isfile(script), f"{source}: no such script {words[1]}"
            program = [sys.executable, script]
        elif words[0] == "wandb":
            program = [os.path.join(os.path.dirname(sys.executable), "wandb")] + [w for w in words[1:3] if not w.startswith("-") and "/" not in w]
        else:
            raise AssertionError(f"{source}: cannot check {words[0]!r}")
        key = tuple(program)
        if key not in self.helps:
            self.helps[key] = _help_text(program, self.workdir)
        named = _options(" ".join(words[3:] if words[:2] == ["python", "-m"] else words[1:]))
        missing = [o for o in named if o not in self.helps[key]]
        assert not missing, f"{source}: {' '.join(words)}: options not in --help: {missing}"

    def run(self, source: str, command: str) -> None:
        words = shlex.split(command)
        if words[0] == "sbatch":
            wrapped = words[words.index("--wrap") + 1]
            return self.run(source, wrapped)
        if words[0] == "make":
            dry = subprocess.run(["make", "-n", *words[1:]], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
            assert dry.returncode == 0, (source, dry.stderr)
            for line in dry.stdout.splitlines():
                line_words = shlex.split(line)
                if line_words and line_words[0].endswith("/gan-suite"):
                    self.gan_suite(line_words[1:], f"{source} (make {words[1]})")
            return
        needs_gpu = "cuda" in command
        if is_template(command) or needs_gpu or words[0] in ("python", "wandb") and words[:3] != ["python", "-m", "gan_suite"]:
            return self.options_in_help(words, source)
        if words[0] == "python":  # python -m gan_suite ...
            words = ["gan-suite", *words[3:]]
        self.gan_suite(words[1:], source)


def test_the_documents_name_commands():
    commands = documented_commands()
    files = {f for f, _ in commands}
    assert {"README.md", "benchmarks.md", "evaluation.md", "performance.md", "tracking.md"} <= files
    assert ("README.md", "make quickstart") in commands and ("README.md", "make test") in commands


def test_template_detection():
    assert is_template("gan-suite evaluate --ckpt CKPT --features inception")
    assert is_template("wandb sync runs/<name>/<run id>/wandb/offline-run-*")
    assert is_template("gan-suite benchmark DEF.yaml --out DIR [--jobs N]")
    assert not is_template("gan-suite fit --config configs/quickstart.yaml --model.init_args.pack=2")
    assert not is_template("gan-suite evaluate --ckpt runs/quickstart/quickstart/checkpoints/last.ckpt --num-samples 5000")


@pytest.mark.slow
def test_every_documented_command_runs(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    for folder in ("configs", "benchmarks"):
        os.symlink(os.path.join(REPO_ROOT, folder), work / folder)
    monkeypatch.chdir(work)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    monkeypatch.setenv("GAN_SUITE_CACHE", str(tmp_path / "cache"))
    runner = Runner(str(work), monkeypatch, capsys)
    for source, command in documented_commands():
        runner.run(f"{source}: {command}", command)
