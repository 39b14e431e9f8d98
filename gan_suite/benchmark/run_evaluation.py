"""Evaluate one trained run: the final checkpoint under every protocol, the curve of the main
metric over the periodic checkpoints, and (when the run used W&B) the results into its W&B run.

The evaluation function has the signature of
:func:`gan_suite.evaluation.evaluate.evaluate_checkpoint`::

    evaluate_fn(ckpt_path, *, features, metrics, num_samples, real_split, batch_size, device,
                out_dir, seed, ...) -> {"metrics": {name: float}, "protocol": {"iteration": int, ...}, "files": {...}}
"""

from __future__ import annotations

import glob
import inspect
import os
import re
import threading
import warnings
from typing import Callable, Optional

from gan_suite.benchmark.definition import BenchmarkDefinition, Protocol
from gan_suite.errors import NonFiniteSamplesError

#: W&B runs of one process are opened one at a time
_WANDB_LOCK = threading.Lock()


def default_evaluate_fn() -> Callable:
    from gan_suite.evaluation.evaluate import evaluate_checkpoint

    return evaluate_checkpoint


def checkpoint_step(path: str) -> Optional[int]:
    """The optimizer step in a ModelCheckpoint file name (``epoch=0-step=400.ckpt`` -> 400)."""
    match = re.search(r"step=(\d+)", os.path.basename(path))
    return int(match.group(1)) if match else None


def periodic_checkpoints(train_dir: str) -> list[tuple[int, str]]:
    """(optimizer step, path) of the periodic checkpoints, by step (``last*.ckpt`` excluded)."""
    found = []
    for path in glob.glob(os.path.join(train_dir, "checkpoints", "*.ckpt")):
        step = checkpoint_step(path)
        if step is not None and not os.path.basename(path).startswith("last"):
            found.append((step, path))
    return sorted(found)


def final_checkpoint(train_dir: str) -> Optional[str]:
    last = os.path.join(train_dir, "checkpoints", "last.ckpt")
    if os.path.isfile(last):
        return last
    periodic = periodic_checkpoints(train_dir)
    return periodic[-1][1] if periodic else None


def _call(evaluate_fn: Callable, ckpt: str, protocol: Protocol, definition: BenchmarkDefinition, device: str, out_dir: str, num_samples=None) -> dict:
    kwargs = dict(protocol.kwargs)
    if num_samples is not None:
        kwargs["num_samples"] = num_samples
    if definition.evaluation_batch_size is not None:
        kwargs.setdefault("batch_size", definition.evaluation_batch_size)
    kwargs.update(device=device, out_dir=out_dir, seed=definition.evaluation_seed)
    try:
        parameters = inspect.signature(evaluate_fn).parameters
        if "progress" in parameters:
            kwargs.setdefault("progress", False)
        if "bootstrap" in parameters:  # the report's intervals come from the seeds; a protocol may still ask
            kwargs.setdefault("bootstrap", 0)
    except (TypeError, ValueError):
        pass
    return evaluate_fn(ckpt, **kwargs)


def evaluate_run(
    definition: BenchmarkDefinition,
    train_dir: str,
    run_folder: str,
    d_steps: int,
    evaluate_fn: Callable,
    device: str = "cpu",
) -> dict:
    """Evaluate a finished training run.

    Args:
        train_dir: the training run directory (config.yaml, checkpoints/, samples/).
        run_folder: ``DIR/runs/<run_id>``; evaluations go to ``<run_folder>/evaluation/``.
        d_steps: discriminator updates per training step (checkpoint steps -> training steps).
    Returns:
        ``{"metrics": {...}, "curve": [[training step, main metric], ...], "protocols": {name: protocol},
        "files": {...}, "final_iteration": int, "evaluation_errors": {protocol: reason}}``.
        With several protocols, one that raises is recorded in ``evaluation_errors`` and the
        others are kept; otherwise (and for NaN samples) the exception propagates and the runner
        turns it into a status.
    """
    final = final_checkpoint(train_dir)
    if final is None:
        raise FileNotFoundError(f"no checkpoint in {os.path.join(train_dir, 'checkpoints')}")
    evaluations = os.path.join(run_folder, "evaluation")
    metrics, protocols, files = {}, {}, {}
    main_protocol = definition.main_protocol()
    main_result = None
    errors = {}
    for protocol in definition.protocols:
        try:
            result = _call(evaluate_fn, final, protocol, definition, device, os.path.join(evaluations, protocol.name))
        except NonFiniteSamplesError:
            raise  # the generator diverged: no protocol can say anything
        except Exception as err:
            if len(definition.protocols) == 1:
                raise
            # one protocol unavailable (e.g. Inception weights offline): keep the others
            errors[protocol.name] = f"{type(err).__name__}: {err}"
            continue
        protocols[protocol.name] = result.get("protocol", {})
        for key, value in (result.get("metrics") or {}).items():
            metrics[definition.metric_key(protocol, key)] = value
        for key, path in (result.get("files") or {}).items():
            files[definition.metric_key(protocol, key)] = os.path.relpath(str(path), run_folder) if os.path.isabs(str(path)) else str(path)
        if protocol is main_protocol:
            main_result = result
    main_key = definition.main_metric
    main_raw = main_key if len(definition.protocols) == 1 else main_key.split("/", 1)[1]
    if len(errors) == len(definition.protocols):
        raise RuntimeError("every evaluation protocol failed: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    final_step = checkpoint_step(final)
    final_iteration = (main_result or {}).get("protocol", {}).get("iteration")
    if final_iteration is None:
        periodic = periodic_checkpoints(train_dir)
        last_step = final_step if final_step is not None else (periodic[-1][0] if periodic else 0)
        final_iteration = last_step // (d_steps + 1)
    final_iteration = int(final_iteration)

    curve = []
    if definition.curve_every_n_steps and main_result is not None:
        for step, path in periodic_checkpoints(train_dir):
            iteration = step // (d_steps + 1)
            if iteration >= final_iteration:
                continue
            result = _call(
                evaluate_fn, path, main_protocol, definition, device,
                os.path.join(evaluations, "curve", f"step_{iteration:07d}"), num_samples=definition.curve_num_samples,
            )
            value = (result.get("metrics") or {}).get(main_raw)
            if value is not None:
                curve.append([iteration, value])
    if main_key in metrics:
        curve.append([final_iteration, metrics[main_key]])
    if not definition.keep_checkpoints:
        for _, path in periodic_checkpoints(train_dir):
            os.unlink(path)
    return {
        "metrics": metrics, "curve": curve, "protocols": protocols, "files": files,
        "final_iteration": final_iteration, "evaluation_errors": errors,
    }


def log_to_wandb(train_dir: str, run_folder: str, evaluation: dict, main_metric: str, d_steps: int) -> Optional[str]:
    """Append the evaluation to the run's W&B run (a resumed segment); returns a warning or None.

    Logged: ``eval/<main metric>`` over training (x: ``trainer/global_step``), every final metric
    as ``eval/<name>`` and in the run summary, and the evaluation pictures (nearest neighbours).
    """
    try:
        from gan_suite.tracking import log_evaluation, reopen_run_logger

        with _WANDB_LOCK:
            logger = reopen_run_logger(train_dir, silent=True)
            if logger is None:
                return None
            try:
                for iteration, value in evaluation["curve"][:-1]:
                    logger.log_metrics({f"eval/{main_metric}": value, "iteration": iteration}, step=iteration * (d_steps + 1))
                files = {k: os.path.join(run_folder, v) for k, v in evaluation.get("files", {}).items()}
                step = evaluation["final_iteration"] * (d_steps + 1)
                log_evaluation(logger, {"metrics": evaluation["metrics"], "files": files}, step=step, summary=True)
            finally:
                logger.finalize("success")
    except Exception as err:  # W&B trouble must not lose a finished run's result
        warnings.warn(f"could not log the evaluation to W&B: {err}", stacklevel=2)
        return f"W&B logging failed: {err}"
    return None
