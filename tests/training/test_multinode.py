"""One run over two "nodes" (two processes on this machine, loopback, gloo), started the two ways
docs/multinode.md documents: torchrun on each node, and srun under SLURM (its environment
variables set by hand, as srun sets them). The result must equal one process with the same
global batch."""

import os
import socket
import subprocess
import sys

import pytest
import torch

from tests.training.test_ddp import SCRIPT, _max_diff, _run

BATCH, STEPS = 16, 15  # per process; the single process takes 2 x BATCH
_LAUNCH_VARS = ("LOCAL_RANK", "RANK", "NODE_RANK", "GROUP_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    for var in _LAUNCH_VARS:
        env.pop(var, None)
    for var in [v for v in env if v.startswith("SLURM_")]:
        env.pop(var)
    return env


def _script_args(out) -> list[str]:
    # one device per node, rank-invariant noise, two nodes
    return [SCRIPT, str(out), "1", str(BATCH), str(STEPS), "1", "non_saturating", "mlp", "no", "2"]


def _torchrun(node_rank: int, port: int, out) -> tuple[list[str], dict]:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
        "--node_rank", str(node_rank), "--master_addr", "127.0.0.1", "--master_port", str(port), *_script_args(out),
    ]
    return cmd, _clean_env()


def _srun(node_rank: int, port: int, out) -> tuple[list[str], dict]:
    # what srun sets for task `node_rank` of `sbatch --nodes=2 --ntasks-per-node=1`
    env = {
        **_clean_env(), "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "gan", "SLURM_NNODES": "2", "SLURM_NTASKS": "2",
        "SLURM_NTASKS_PER_NODE": "1", "SLURM_NODELIST": "127.0.0.1", "SLURM_PROCID": str(node_rank),
        "SLURM_LOCALID": "0", "SLURM_NODEID": str(node_rank), "MASTER_PORT": str(port),
    }
    return [sys.executable, *_script_args(out)], env


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """The reference: one process with the global batch of both nodes."""
    (single,) = _run(tmp_path_factory.mktemp("single"), devices=1, batch=2 * BATCH, steps=STEPS, invariant=True)
    return single


@pytest.mark.slow
@pytest.mark.parametrize("launch", [_torchrun, _srun], ids=["torchrun", "srun"])
def test_two_nodes_of_one_process_match_one_process_with_the_same_global_batch(tmp_path, launch, single_process):
    out = tmp_path / "nodes"
    out.mkdir()
    port = _free_port()
    procs = []
    for node_rank in (0, 1):
        cmd, env = launch(node_rank, port, out)
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for proc in procs:
        log, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, log[-3000:]
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert (r0["world_size"], r0["num_nodes"], r0["node_rank"], r1["node_rank"]) == (2, 2, 0, 1)
    assert r0["iteration"] == r1["iteration"] == STEPS
    assert _max_diff(r0["generator"], r1["generator"]) == 0.0
    assert _max_diff(r0["discriminator"], r1["discriminator"]) == 0.0
    single = single_process
    assert torch.allclose(torch.cat([r0["noise"], r1["noise"]]), single["noise"])
    # same tolerance as the two-rank test: all-reduce sums in another order than one big batch
    assert _max_diff(r0["generator"], single["generator"]) < 1e-4
    assert _max_diff(r0["discriminator"], single["discriminator"]) < 1e-4
