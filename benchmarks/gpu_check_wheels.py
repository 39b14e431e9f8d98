"""Install carried wheels without network: ``pip install --no-index --no-deps --target SITE``,
then list the requirements of what was installed that neither SITE nor the interpreter meets.
Standard library only (``packaging``, where the interpreter has it, for the version check).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time


def _clean_pip_env() -> dict:
    """This environment without pip's settings: no config file, index, find-links or constraints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def install_wheels(wheels: str, site: str) -> dict:
    """``pip install --no-index --no-deps --target site`` of every wheel in ``wheels``; then the
    requirements of the installed packages that neither ``site`` nor this interpreter meets."""
    files = sorted(os.path.join(wheels, f) for f in os.listdir(wheels) if f.endswith(".whl")) if os.path.isdir(wheels) else []
    info = {"wheels": wheels, "site": site, "files": [os.path.basename(f) for f in files], "status": "not run"}
    if not files:
        info.update(status="failed", error=f"no .whl files in {wheels}")
        return info
    if os.path.isdir(site) and os.listdir(site):
        info.update(status="failed", error=f"--site {site} is not empty (the wheels go into an empty folder)")
        return info
    os.makedirs(site, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir", "--quiet",
           "--target", site, *files]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_clean_pip_env())
    except subprocess.TimeoutExpired:
        info.update(status="failed", error="pip install took over 300 s", seconds=time.perf_counter() - t0)
        return info
    info["seconds"] = time.perf_counter() - t0
    if proc.returncode != 0:
        info.update(status=f"failed (exit {proc.returncode})", error=(proc.stderr or proc.stdout)[-1500:])
        return info
    info["status"] = "ok"
    info["installed"], info["unmet"] = installed_and_unmet(site)
    return info


def installed_and_unmet(site: str) -> tuple[dict, list]:
    """({name: version} installed in ``site``, ["name spec (needed by X; have Y)"] unmet)."""
    import importlib.metadata as md

    installed = {_norm(d.metadata["Name"]): d.version for d in md.distributions(path=[site])}
    available = {}
    for d in md.distributions(path=[site] + sys.path):  # site first: what the jobs will import
        available.setdefault(_norm(d.metadata["Name"]), d.version)
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:
        return installed, ["(not checked: the packaging module is missing)"]
    unmet = []
    for d in md.distributions(path=[site]):
        for text in d.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            have = available.get(_norm(req.name))
            if have is None:
                unmet.append(f"{req} (needed by {d.metadata['Name']}; missing)")
            elif req.specifier and not req.specifier.contains(Version(have), prereleases=True):
                unmet.append(f"{req} (needed by {d.metadata['Name']}; have {have})")
    return installed, sorted(set(unmet))


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
