"""benchmarks/gpu_check.sh: the one-command GPU check, run here on the CPU; its wheel install
without network; the wheel list of ``make gpu-wheels``."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import time

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "benchmarks", "gpu_check.sh")
WHEEL_LIST = os.path.join(REPO_ROOT, "benchmarks", "gpu_wheels.txt")
#: the GPU machine's interpreter, for the markers of the wheel list's requirements
GPU_MARKERS = {
    "python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "platform_system": "Linux",
    "platform_machine": "x86_64", "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython",
}


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(REPO_ROOT, "benchmarks", "gpu_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(args: list, tmp_path, extra_env: dict | None = None, timeout: int = 240) -> dict:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **(extra_env or {})}
    proc = subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = args[args.index("--out") + 1]
    assert os.path.isfile(os.path.join(out, "gpu_check.md")) and os.path.isfile(os.path.join(out, "gpu_check.log"))
    with open(os.path.join(out, "gpu_check.json")) as f:
        return json.load(f)


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.mark.slow
def test_quick_cpu_run_fills_both_tables(tmp_path):
    """The whole check at --quick sizes on the CPU (about 50 s here, under a minute): every part
    runs in its own process and its rows reach the JSON and the Markdown table with real numbers.
    The seeds part may fail (its script's --json interface is newer than some checkouts): then it
    must be reported as a failed job with its error, and the other parts must be unaffected."""
    out = str(tmp_path / "out")
    t0 = time.perf_counter()
    report = _run(["--device", "cpu", "--quick", "--out", out], tmp_path)
    wall = time.perf_counter() - t0
    jobs = {j["name"]: j for j in report["jobs"]}
    assert set(jobs) == {"env", "train-quickstart", "seeds", "knn", "eval"}  # --quick: no compile jobs
    for name in ("env", "train-quickstart", "knn", "eval"):
        assert jobs[name]["status"] == "ok", (name, jobs[name]["error"])
        assert jobs[name]["gpu_peak_mb"] is None  # CPU: n/a
        assert 0 < jobs[name]["seconds"] < wall
    assert jobs["seeds"]["status"] == "ok" or (jobs["seeds"]["status"].startswith("failed") and jobs["seeds"]["error"])
    assert report["finished"] and report["install"] is None and report["wall_s"] <= wall
    assert report["env"]["modules"]["gan_suite"]["file"].startswith(REPO_ROOT)

    tables = report["tables"]
    train = tables["train"]
    assert [r["variant"] for r in train] == ["lightning", "lightning+device_cache+nocheck+channels_last+bf16+fused"]
    for r in train:
        assert r["case"] == "quickstart" and r["clock"] == "cpu"
        assert _positive(r["plain_ms"]) and _positive(r["lightning_ms"]) and _positive(r["ratio"])
        assert r["lightning_peak_mb"] is None and r["plain_peak_mb"] is None
    assert train[0]["vs_plain_fp32"] == pytest.approx(train[0]["lightning_ms"] / train[0]["plain_ms"])
    assert train[1]["vs_plain_fp32"] == pytest.approx(train[1]["lightning_ms"] / train[0]["plain_ms"])
    (knn,) = tables["knn"]
    assert knn["shape"] == "256x256x64" and all(_positive(knn[c]) for c in ("gemm", "knn", "radius"))
    assert knn["knn/gemm"] == pytest.approx(knn["knn"] / knn["gemm"], rel=1.0)  # (a median of ratios, not a ratio of medians)
    assert [(r["n"], r["tool"]) for r in tables["eval"]] == [(4, "gan_suite"), (4, "torch_fidelity")]
    for r in tables["eval"]:
        assert _positive(r["seconds"]) and r["samples_per_s"] == pytest.approx(4 / r["seconds"])
        assert math.isfinite(r["values"]["fid"]) and r["gpu_peak_mb"] is None
    ours, theirs = (r["values"] for r in tables["eval"])  # the same samples, network and real set in both tools
    assert ours["fid"] == pytest.approx(theirs["fid"], rel=1e-4) and ours["kid"] == pytest.approx(theirs["kid"], rel=1e-4)
    assert (ours["precision"], ours["recall"]) == (theirs["precision"], theirs["recall"])
    if jobs["seeds"]["status"] == "ok":
        assert tables["seeds"]

    md_text = open(os.path.join(out, "gpu_check.md")).read()
    assert "## Training step" in md_text and "## k-NN" in md_text and "## Evaluation" in md_text
    assert f"| quickstart | lightning | {train[0]['plain_ms']:.2f} | {train[0]['lightning_ms']:.2f} |" in md_text
    assert f"| 4 | torch_fidelity | {tables['eval'][1]['seconds']:.2f} |" in md_text
    assert f"| seeds | seeds | {jobs['seeds']['status']} |" in md_text
    log = open(os.path.join(out, "gpu_check.log")).read()
    assert all(f"===== {name} " in log for name in jobs)


@pytest.mark.slow
def test_a_failing_part_is_reported_and_the_rest_runs(tmp_path):
    """--device cuda on a machine without CUDA: the k-NN job fails (its script cannot use the device),
    the run still ends normally, the env job says there is no GPU, and the failure is in both tables."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: nothing fails")
    out = str(tmp_path / "out")
    report = _run(["--device", "cuda", "--quick", "--parts", "knn", "env", "--out", out], tmp_path)
    jobs = {j["name"]: j for j in report["jobs"]}
    assert [j["name"] for j in report["jobs"]] == ["env", "knn"]  # the plan's order, whatever --parts says
    assert jobs["env"]["status"] == "ok" and report["env"]["cuda_available"] is False
    assert jobs["knn"]["status"].startswith("failed (exit") and re.search("CUDA|NVIDIA", jobs["knn"]["error"])
    assert report["tables"]["knn"] == []
    assert "| knn | knn | failed (exit" in open(os.path.join(out, "gpu_check.md")).read()


def test_a_job_past_its_timeout_is_killed_with_its_children(tmp_path):
    """A job that outlives its timeout is ended with its whole process group (workers included),
    reported as a timeout with its output, and its GPU peak file is not needed."""
    gc = _gpu_check()
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "hang.py"
    script.write_text(
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    job = gc.Job("hang", "knn", str(script), ["--json", str(tmp_path / "hang.json")], 60)
    log = tmp_path / "log"
    log.write_text("")
    t0 = time.perf_counter()
    gc.run_job(job, 3, dict(os.environ), str(log), str(tmp_path))
    assert time.perf_counter() - t0 < 20
    assert job.status == "timeout after 3 s" and "started" in job.error and job.result is None
    child = int(pid_file.read_text())
    for _ in range(50):  # the SIGTERM reaches the child with the group; give it a moment to go
        if not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the job's child {child} survived its timeout")


@pytest.mark.slow
def test_every_option_of_the_full_gpu_plan_is_one_its_script_takes():
    """The jobs of the default CUDA run (which no test here can run) name only options their
    scripts answer in --help (the seeds script's interface is not checked here: it is fixed as
    --device --steps --warmup --threads --json); the order puts compiling last."""
    gc = _gpu_check()
    args = argparse.Namespace(parts=list(gc.PARTS), quick=False, device="cuda", threads=0)
    jobs = gc.plan(args, "/tmp/x")
    assert [j.name for j in jobs] == [
        "env", "train-quickstart", "train-dcgan64", "seeds", "knn", "eval",
        "train-quickstart-compiled", "train-dcgan64-compiled", "train-compile-alone",
    ]
    assert all("compile" not in " ".join(j.args) for j in jobs[:6]) and all("compile" in " ".join(j.args) for j in jobs[6:])
    helps = {}
    for job in jobs:
        if job.script in (None, "seeds_vectorised.py"):
            continue
        if job.script not in helps:
            proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "benchmarks", "perf", job.script), "--help"],
                                  capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": REPO_ROOT})
            assert proc.returncode == 0, proc.stderr[-2000:]
            helps[job.script] = proc.stdout
        named = [a for a in job.args if a.startswith("--")]
        assert named and all(o in helps[job.script] for o in named), (job.name, [o for o in named if o not in helps[job.script]])
    assert "dcgan64" in helps["train_step.py"]
    seeds = next(j for j in jobs if j.name == "seeds")
    assert [a for a in seeds.args if a.startswith("--")] == ["--device", "--steps", "--warmup", "--threads", "--json"]


def test_a_stopped_check_ends_the_running_job_with_its_children(tmp_path):
    """SIGTERM to the driver (e.g. the machine's own time limit) ends the running job's process
    group (which shares the driver's session, so nothing outlives the session) and reports it."""
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "hang.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    driver = (
        "import importlib.util, signal, sys\n"
        f"spec = importlib.util.spec_from_file_location('gpu_check', {os.path.join(REPO_ROOT, 'benchmarks', 'gpu_check.py')!r})\n"
        "gc = importlib.util.module_from_spec(spec); sys.modules['gpu_check'] = gc; spec.loader.exec_module(gc)\n"
        "signal.signal(signal.SIGTERM, gc.stop)\n"
        f"job = gc.Job('hang', 'knn', {str(script)!r}, ['--json', 'x.json'], 60)\n"
        f"gc.run_job(job, 60, None, {str(tmp_path / 'log')!r}, {str(tmp_path)!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", driver])
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert os.getsid(child) == os.getsid(proc.pid)  # the same session as the driver
    proc.send_signal(15)
    assert proc.wait(20) == 128 + 15
    for _ in range(50):
        if not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the job's child {child} survived the stopped check")


def test_the_budget_skips_what_no_longer_fits(tmp_path):
    """--budget below a job's minimum start time: every job is skipped and reported, none is run."""
    gc = _gpu_check()
    out = tmp_path / "out"
    assert gc.main(["--device", "cpu", "--quick", "--parts", "env", "knn", "--budget", "5", "--out", str(out)]) == 0
    report = json.loads((out / "gpu_check.json").read_text())
    assert [(j["name"], j["status"]) for j in report["jobs"]] == [("env", "skipped: 5 s of the budget left"), ("knn", "skipped: 5 s of the budget left")]
    assert report["finished"] and report["tables"]["knn"] == []


# ----------------------------------------------------------------------------- the wheels
def _wheel_list() -> tuple[dict, set]:
    """({normalised name: pinned version}, {normalised provided names}) of benchmarks/gpu_wheels.txt."""
    pins, provided = {}, set()
    for line in open(WHEEL_LIST):
        line = line.strip()
        if line.startswith("# provided:"):
            provided |= {_norm(n) for n in line.split(":", 1)[1].split()}
        elif line and not line.startswith("#"):
            name, version = line.split("==")
            assert _norm(name) not in pins, f"{name} is pinned twice"
            pins[_norm(name)] = version
    return pins, provided


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: str, extras: set) -> list:
    """Requirements of the installed ``dist`` that apply on the GPU machine with ``extras``."""
    out = []
    for text in md.distribution(dist).requires or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({**GPU_MARKERS, "extra": e}) for e in {""} | extras):
            out.append(req)
    return out


def test_the_wheel_list_and_the_gpu_machine_meet_every_requirement():
    """Walk gan_suite's install_requires through the installed metadata: every package that is not
    on the GPU machine ("provided") is pinned in the list, at the version installed here, and its
    pin meets every requirement on it; nothing is pinned that nothing needs."""
    import configparser

    pins, provided = _wheel_list()
    assert not set(pins) & provided
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO_ROOT, "setup.cfg"))
    todo = [Requirement(line) for line in cfg["options"]["install_requires"].split("\n") if line.strip()]
    needed_by, seen = {}, set()
    while todo:
        req = todo.pop()
        name = _norm(req.name)
        if name in provided:
            continue
        assert name in pins, f"{req} (needed by {needed_by.get(str(req), 'gan_suite')}) is neither pinned nor provided"
        assert req.specifier.contains(pins[name], prereleases=True), f"the pin {name}=={pins[name]} does not meet {req}"
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        installed = md.version(req.name)
        assert installed == pins[name], f"{name}: {pins[name]} pinned, {installed} installed here (update {WHEEL_LIST})"
        for sub in _requirements(req.name, set(req.extras)):
            needed_by[str(sub)] = name
            todo.append(sub)
    assert {name for name, _ in seen} == set(pins), f"pinned but not needed: {set(pins) - {n for n, _ in seen}}"


def test_make_gpu_wheels_downloads_the_list_for_the_gpu_machine_into_an_ignored_folder():
    dry = subprocess.run(["make", "-n", "gpu-wheels"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert dry.returncode == 0, dry.stderr
    download = " ".join(line for line in dry.stdout.replace("\\\n", " ").splitlines() if "pip download" in line)
    for part in ("--no-deps", "--only-binary=:all:", "--python-version 3.12", "--platform manylinux2014_x86_64", "-d .whl",
                 "-r benchmarks/gpu_wheels.txt"):
        assert part in download, part
    ignored = subprocess.run(["git", "check-ignore", "-q", ".whl/x.whl"], cwd=REPO_ROOT)
    assert ignored.returncode == 0, ".whl/ is not git-ignored"


@pytest.fixture(scope="session")
def downloaded_wheels(tmp_path_factory):
    """jsonargparse and docstring-parser at their pinned versions, for THIS interpreter (pure Python,
    about 0.2 MB), downloaded once per session; skipped when the package registry cannot be reached."""
    pins, _ = _wheel_list()
    folder = tmp_path_factory.mktemp("wheels")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(folder),
           f"jsonargparse=={pins['jsonargparse']}", f"docstring-parser=={pins['docstring-parser']}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.skip("the package registry did not answer within 180 s")
    if proc.returncode != 0:
        pytest.skip(f"the package registry is unreachable: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return str(folder), pins


@pytest.mark.slow
def test_the_wheels_install_without_network_into_an_empty_folder_and_the_jobs_import_them(tmp_path, downloaded_wheels):
    """gpu_check.sh --wheels: pip --no-index --no-deps into an empty --site (pip's settings and any
    index cleared; a dead proxy for good measure); the env job then imports jsonargparse from there."""
    wheels, pins = downloaded_wheels
    site, out = str(tmp_path / "site"), str(tmp_path / "out")
    dead = "http://127.0.0.1:9"
    report = _run(["--device", "cpu", "--parts", "env", "--wheels", wheels, "--site", site, "--out", out], tmp_path,
                  {"PIP_INDEX_URL": f"{dead}/simple", "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead})
    install = report["install"]
    assert install["status"] == "ok", install.get("error")
    assert install["installed"] == {"jsonargparse": pins["jsonargparse"], "docstring-parser": pins["docstring-parser"]}
    assert install["unmet"] == []  # (PyYAML, jsonargparse's one requirement, is this interpreter's)
    assert os.path.isdir(os.path.join(site, "jsonargparse")) and os.path.isdir(os.path.join(site, "docstring_parser"))
    modules = report["env"]["modules"]
    assert modules["jsonargparse"]["file"].startswith(site + os.sep) and modules["jsonargparse"]["version"] == pins["jsonargparse"]
    assert modules["torch"]["file"] and not modules["torch"]["file"].startswith(site)
    assert f"into `{site}`: ok, 2 packages" in open(os.path.join(out, "gpu_check.md")).read()


def test_the_install_refuses_a_folder_that_is_not_empty_and_reports_unmet_requirements(tmp_path):
    gc = _gpu_check()
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "old.txt").write_text("x")
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "a-1.0-py3-none-any.whl").write_bytes(b"")
    info = gc.install_wheels(str(tmp_path / "wheels"), str(tmp_path / "site"))
    assert info["status"] == "failed" and "is not empty" in info["error"]
    assert gc.install_wheels(str(tmp_path / "none"), str(tmp_path / "s2"))["error"].startswith("no .whl files")
    # a package whose requirements are missing or of the wrong version
    dist = tmp_path / "site2" / "demo-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: no-such-package-xyz>=1\n"
        "Requires-Dist: packaging<1\nRequires-Dist: other-xyz; extra == 'fancy'\n"
    )
    installed, unmet = gc.installed_and_unmet(str(tmp_path / "site2"))
    assert installed == {"demo": "1.0"}
    assert unmet == ["no-such-package-xyz>=1 (needed by demo; missing)", f"packaging<1 (needed by demo; have {md.version('packaging')})"]
