"""The GPU check's tables: rows of each part from its script's JSON, ``gpu_check.json`` and
``gpu_check.md``. Standard library only."""

from __future__ import annotations

import json
import os
import time
from typing import Optional

from gpu_check_jobs import Job

PARTS = ("env", "train", "seeds", "knn", "eval")


def train_rows(data: dict, job: Job) -> list:
    """train_step.py's rows by the wall clock on CUDA, by the process's CPU time on a CPU."""
    clock = "wall" if str(data["args"]["device"]).startswith("cuda") else "cpu"
    rows = []
    for r in data["rows"]:
        v = r[clock]
        rows.append({
            "case": r["case"], "variant": r["variant"], "baseline": r["baseline"], "clock": clock,
            "plain_ms": v["plain_ms"], "lightning_ms": v["lightning_ms"], "ratio": v["ratio"], "ratio_q1_q3": v["ratio_q1_q3"],
            "lightning_peak_mb": r.get("lightning_peak_mb"), "plain_peak_mb": r.get("plain_peak_mb"), "job": job.name,
        })
    return rows


def knn_rows(data: dict, job: Job) -> list:
    """knn.py's rows as they are (seconds per contender, ratios, CUDA peaks)."""
    return [{**r, "job": job.name} for r in data["rows"]]


def eval_rows(data: dict, job: Job) -> list:
    """evaluate_vs_fidelity.py's rows as they are (one per size and tool)."""
    return [{**r, "job": job.name} for r in data["rows"]]


def generic_rows(data, job: Job) -> list:
    """Rows of a JSON whose layout this file does not fix: its ``rows`` (or the list itself) with
    nested dicts flattened to dotted keys; otherwise its scalars as key/value rows."""

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            elif isinstance(v, (int, float, str, bool)) or v is None:
                out[f"{prefix}{k}"] = v
        return out

    items = data.get("rows") if isinstance(data, dict) else data
    if isinstance(items, list) and all(isinstance(r, dict) for r in items):
        return [flat(r) for r in items]
    if isinstance(data, dict):
        return [{"key": k, "value": v} for k, v in flat(data).items()]
    return [{"value": json.dumps(data)[:200]}]


def _fmt(v, spec: str = ".2f") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _table(header: list, rows: list) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/").replace("\n", " ") for c in row) + " |" for row in rows]
    return lines


def tables(jobs: list) -> dict:
    """Rows of each part from the jobs that succeeded; training rows get ``vs_plain_fp32``."""
    out = {p: [] for p in PARTS if p != "env"}
    for job in jobs:
        if job.status == "ok" and job.part in out:
            try:
                out[job.part] += job.rows(job.result, job)
            except (KeyError, TypeError, ValueError) as exc:
                job.status, job.error = "failed (unexpected JSON)", f"{type(exc).__name__}: {exc}"
    fp32 = {r["case"]: r["plain_ms"] for r in out["train"] if r["baseline"] == "plain"}
    for r in out["train"]:
        r["vs_plain_fp32"] = r["lightning_ms"] / fp32[r["case"]] if r["case"] in fp32 else None
    return out


def write_report(out_dir: str, args, install: Optional[dict], jobs: list, started: float, finished: bool) -> None:
    """Write ``gpu_check.json`` (atomically) and ``gpu_check.md`` of the jobs so far into ``out_dir``."""
    wall = time.perf_counter() - started
    parts = tables(jobs)
    env = next((j.result for j in jobs if j.name == "env" and j.result), None)
    data = {
        "command": args.command_line, "device": args.device, "quick": args.quick, "budget_s": args.budget, "wall_s": wall,
        "finished": finished, "install": install, "env": env,
        "jobs": [{k: getattr(j, k) for k in ("name", "part", "status", "seconds", "timeout", "gpu_peak_mb", "error")} for j in jobs],
        "tables": parts,
    }
    with open(os.path.join(out_dir, "gpu_check.json.tmp"), "w") as f:
        json.dump(data, f, indent=1)
    os.replace(os.path.join(out_dir, "gpu_check.json.tmp"), os.path.join(out_dir, "gpu_check.json"))

    md = ["# GPU check", "", f"`{args.command_line}`", ""]
    if env:
        dev = env.get("device") or {}
        md.append(f"Python {env.get('python')}, torch {env.get('modules', {}).get('torch', {}).get('version')} (CUDA {env.get('torch_cuda')}), "
                  f"{env.get('cpus')} CPUs; device: {dev.get('name', 'none')} {dev.get('memory_gb', '')}{' GB' if dev else ''}.")
    md.append(f"Wall time {wall:.0f} s of a {args.budget:.0f} s budget{'' if finished else ' (still running)'}; "
              f"device {args.device}{', quick sizes' if args.quick else ''}.")
    md.append("")
    if install is not None:
        md.append(f"Install from `{install['wheels']}` into `{install['site']}`: {install['status']}"
                  + (f", {len(install.get('installed', {}))} packages in {install.get('seconds', 0):.1f} s" if install["status"] == "ok" else "")
                  + (f"; unmet requirements: {', '.join(install['unmet'])}" if install.get("unmet") else "")
                  + (f"; error: {install['error'].splitlines()[-1] if install.get('error') else ''}" if install["status"] != "ok" else "") + ".")
        md.append("")
    md.append("## Jobs")
    md.append("")
    md += _table(["job", "part", "status", "seconds", "timeout s", "GPU peak MB (process)", "last error line"], [
        [j.name, j.part, j.status, _fmt(j.seconds, ".1f"), _fmt(j.timeout, ".0f"), _fmt(j.gpu_peak_mb, ".0f"),
         (j.error or "").strip().splitlines()[-1][:160] if j.error else ""] for j in jobs])
    if env:
        md += ["", "Imported: " + "; ".join(f"{m} {v.get('version') or ''} ({'error: ' + v['error'] if 'error' in v else v.get('file')})"
                                            for m, v in env.get("modules", {}).items())]
    if parts["train"]:
        clock = parts["train"][0]["clock"]
        md += ["", f"## Training step: GANModule vs the plain PyTorch loop ({clock} clock, ms per training step)", ""]
        md += _table(["case", "variant", "plain ms", "Lightning ms", "ratio (q1-q3)", "vs plain fp32", "peak MB Lightning / plain", "job"], [
            [r["case"], r["variant"], _fmt(r["plain_ms"]), _fmt(r["lightning_ms"]),
             f"{r['ratio']:.3f} ({r['ratio_q1_q3'][0]:.3f}-{r['ratio_q1_q3'][1]:.3f})", _fmt(r["vs_plain_fp32"], ".3f"),
             f"{_fmt(r['lightning_peak_mb'], '.0f')} / {_fmt(r['plain_peak_mb'], '.0f')}", r["job"]] for r in parts["train"]])
        md += ["", "ratio: Lightning / the plain loop with the same compute options (median over rounds of the same-round ratio); "
               "vs plain fp32: Lightning / the plain loop without options; peak MB: the most memory a segment allocated above "
               "what the process held when it started (CUDA only)."]
    if parts["seeds"]:
        keys = list(dict.fromkeys(k for r in parts["seeds"] for k in r))
        md += ["", "## Vectorised seeds (as benchmarks/perf/seeds_vectorised.py reports them)", ""]
        md += _table(keys, [[_fmt(r.get(k), ".4g") for k in keys] for r in parts["seeds"]])
    if parts["knn"]:
        md += ["", "## k-NN vs the bare matmul (float32, seconds: median over rounds)", ""]
        md += _table(["shape", "k", "gemm s", "knn s", "radius s", "knn / gemm", "radius / gemm", "peak MB gemm / knn / radius"], [
            [r["shape"], r["k"], _fmt(r.get("gemm"), ".4f"), _fmt(r.get("knn"), ".4f"), _fmt(r.get("radius"), ".4f"),
             _fmt(r.get("knn/gemm"), ".3f"), _fmt(r.get("radius/gemm"), ".3f"),
             " / ".join(_fmt((r.get("peak_mb") or {}).get(c), ".0f") for c in ("gemm", "knn", "radius"))] for r in parts["knn"]])
    if parts["eval"]:
        md += ["", "## Evaluation: generate -> Inception-v3 (random weights) -> FID/KID/PR", ""]
        md += _table(["N", "tool", "seconds", "samples/s", "gan_suite / torch-fidelity", "GPU peak MB", "peak RSS MB", "FID", "KID", "precision", "recall"], [
            [r["n"], r["tool"], _fmt(r["seconds"]), _fmt(r["samples_per_s"], ".0f"), _fmt(r["ratio"], ".3f"), _fmt(r.get("gpu_peak_mb"), ".0f"),
             _fmt(r["peak_rss_mb"], ".0f")] + [_fmt(r["values"].get(k), ".4g") for k in ("fid", "kid", "precision", "recall")]
            for r in parts["eval"]])
        md += ["", "seconds: generate N samples + their features + the cached real features + the metrics, one fresh process per "
               "measurement. Both tools score the same samples with the same network and real set, so their values should agree; "
               "the values themselves mean nothing with random weights (the speed does not depend on them)."]
    with open(os.path.join(out_dir, "gpu_check.md"), "w") as f:
        f.write("\n".join(md) + "\n")
