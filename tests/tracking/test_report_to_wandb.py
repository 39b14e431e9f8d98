"""`gan-suite report` logs the benchmark table and figures to an (offline) W&B run."""

import glob
import json
import os
import subprocess
import sys

from gan_suite.benchmark.report import write_report
from gan_suite.benchmark.results import write_definition_copy, write_result
from tests.benchmark.helpers import definition_dict

WANDB = os.path.join(os.path.dirname(sys.executable), "wandb")


def test_report_logs_the_table_to_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    write_definition_copy(str(tmp_path), definition_dict(name="tiny", seeds=[0, 1]))
    for i, run_id in enumerate(["gan__seed0", "gan__seed1", "pacgan2__seed0"]):
        metrics = {"modes_covered": 3 + i, "high_quality": 0.5, "mode_kl": 0.1 * i}
        write_result(str(tmp_path), run_id, {"run_id": run_id, "status": "finished", "metrics": metrics, "curve": [[10, 3 + i]], "logger": "wandb"})
    written = write_report(str(tmp_path))  # W&B on: the runs were logged with it
    (segment,) = glob.glob(str(tmp_path / "report" / "*" / "wandb" / "offline-run-*"))
    out = subprocess.run([WANDB, "leet", "inspect", "--summary", "--json", segment], capture_output=True, text=True, check=True, timeout=120)
    summary = json.loads(out.stdout)["summary"]
    assert summary["tiny/table"]["_type"] == "table-file" and summary["tiny/table"]["nrows"] == 3  # 2 variants + 1 published
    assert summary["tiny/curves"]["_type"] == "images/separated"
    assert summary["tiny/seeds"]["_type"] == "images/separated"  # the per-seed strip plot
    assert os.path.isfile(written["table.md"])
