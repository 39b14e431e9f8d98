"""The ``gan-suite`` command.

``gan-suite fit --config configs/NAME.yaml`` is Lightning's CLI (dotted overrides,
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


def _lightning_cli(argv: Sequence[str]) -> None:
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.cli import LightningCLI, SaveConfigCallback

    import warnings

    import gan_suite.training  # noqa: F401  (registers the gan_ddp strategies)

    # A resumed run continues exactly (the data order is a function of (seed, step) and the noise
    # of (seed, rank, step, draw); tested), so Lightning's advice about non-resumable loaders does not apply.
    warnings.filterwarnings("ignore", ".*dataloader is not resumable.*")
    # Checkpoints are written after a training step's updates, which is what resuming needs;
    # Lightning's advice to save a pre-optimization state does not apply to a GAN step.
    warnings.filterwarnings("ignore", ".*Using ModelCheckpoint with manual optimization.*")
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")
    from gan_suite.data.base import GANDataModule
    from gan_suite.training.callbacks import SampleGrid
    from gan_suite.training.module import GANModule

    class GanSuiteCLI(LightningCLI):
        @staticmethod
        def subcommands() -> dict:
            # GANModule trains only: Lightning's validate/test/predict have no step to run here
            return {"fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"}}

        def add_arguments_to_parser(self, parser) -> None:
            parser.add_lightning_class_args(SampleGrid, "samples")
            parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
            # every periodic checkpoint is kept (-1); --checkpoint.save_top_k=1 keeps only the newest
            parser.set_defaults({"checkpoint.save_last": True, "checkpoint.every_n_train_steps": 1000, "checkpoint.save_top_k": -1})

        # _parse_ckpt_path and _prepare_subcommand_kwargs are LightningCLI 2.x internals (2.6 checked):
        # the first reads --ckpt_path's hyper-parameters, the second hands the options to Trainer.fit.
        def _parse_ckpt_path(self) -> None:
            subcommand = self.config.get("subcommand")
            if subcommand:
                check_fit_options(self.config[subcommand])  # before Lightning reads the checkpoint
                resume_in_run_directory(self.config[subcommand])
            super()._parse_ckpt_path()

        def instantiate_classes(self) -> None:
            try:
                super().instantiate_classes()
            except ValueError as err:  # jsonargparse wraps a class's own error in a union-type report
                raise instantiation_error(err) from None

        def instantiate_trainer(self, **kwargs):
            from pytorch_lightning.callbacks import ProgressBar

            from gan_suite.training.callbacks import TrainingStepProgressBar

            trainer_cfg = self._get(self.config_init, "trainer", default={})  # LightningCLI internal (2.6 checked)
            callbacks = trainer_cfg.get("callbacks") or []
            callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
            if trainer_cfg.get("enable_progress_bar", True) is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
                kwargs["callbacks"] = callbacks + [TrainingStepProgressBar()]  # counts training steps, not updates
            return super().instantiate_trainer(**kwargs)

        def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
            kwargs = super()._prepare_subcommand_kwargs(subcommand)
            if "weights_only" in kwargs:
                if kwargs["weights_only"] is False:
                    raise UsageError("--weights_only false is not supported: checkpoints are read as tensors only")
                kwargs["weights_only"] = True  # resuming never unpickles code (torch.load(weights_only=True))
            return kwargs

    class RunDirectorySaveConfig(SaveConfigCallback):
        """config.yaml into the run's own directory (for W&B, trainer.log_dir is the shared save_dir);
        the resolved config also goes to W&B as the run's config."""

        def setup(self, trainer, pl_module, stage: str) -> None:
            import os

            from gan_suite.training.callbacks import run_directory

            if self.already_saved:
                return
            run_dir = trainer.strategy.broadcast(run_directory(trainer))
            if trainer.is_global_zero:
                os.makedirs(run_dir, exist_ok=True)
                path = os.path.join(run_dir, self.config_filename)
                self.parser.save(self.config, path, skip_none=False, overwrite=self.overwrite, multifile=self.multifile)
                self.save_config(trainer, pl_module, stage)
                self.already_saved = True
            self.already_saved = trainer.strategy.broadcast(self.already_saved)

        def save_config(self, trainer, pl_module, stage: str) -> None:
            import yaml
            from pytorch_lightning.loggers import WandbLogger

            resolved = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_hyperparams(resolved)

    from gan_suite.errors import UsageError

    # main() removes --debug, so argv differs from sys.argv there: not the mistake this warns about
    warnings.filterwarnings("ignore", ".*not recommended to provide both args and command line arguments.*")
    GanSuiteCLI(
        GANModule,
        GANDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=None if list(argv) == sys.argv[1:] else list(argv),  # None: read sys.argv, no warning
        save_config_callback=RunDirectorySaveConfig,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,  # the module builds its two optimizers itself (g_/d_optimizer)
        parser_kwargs={"prog": "gan-suite", "exit_on_error": False, **({"parser_mode": "omegaconf"} if _has_omegaconf() else {})},
    )


#: values of ``--ckpt_path`` that Lightning resolves itself (not file names)
_CKPT_PATH_KEYWORDS = ("last", "best", "hpc", "registry")


def check_fit_options(cfg) -> None:
    """Refuse out-of-range ``fit`` options before anything is built (one-line UsageError).

    ``cfg``: the sub-command's parsed namespace. Checks step counts, the checkpoint to resume from
    (exists, tensors only) and that the output folders can be written.
    """
    from gan_suite.arguments import unwritable
    from gan_suite.errors import UsageError
    from gan_suite.safe_files import load_tensors

    def get(key: str):
        try:
            return cfg[key]
        except (KeyError, TypeError):
            return None

    for key in ("trainer.max_steps", "trainer.max_epochs"):
        value = get(key)
        if value is not None and value != -1 and value < 1:
            raise UsageError(f"--{key} must be -1 (no limit) or >= 1, got {value}")
    for key in ("trainer.min_steps", "trainer.log_every_n_steps", "checkpoint.every_n_train_steps"):
        value = get(key)
        if value is not None and value < 0:
            raise UsageError(f"--{key} must be >= 0, got {value}")
    for key in ("samples.every_n_steps", "model.init_args.d_steps", "data.init_args.batch_size"):
        value = get(key)
        if isinstance(value, int) and value < 1:
            raise UsageError(f"--{key} must be >= 1, got {value}")
    ckpt = get("ckpt_path")
    if ckpt and str(ckpt) not in _CKPT_PATH_KEYWORDS and "://" not in str(ckpt):
        if not os.path.isfile(str(ckpt)):
            raise UsageError(f"--ckpt_path: checkpoint not found: {ckpt}")
        load_tensors(str(ckpt), "--ckpt_path checkpoint")  # one-line refusal before Lightning reads it
    for key in ("trainer.default_root_dir", "trainer.logger.init_args.save_dir"):
        value = get(key)
        if isinstance(value, str) and value:
            problem = unwritable(value)
            if problem:
                raise UsageError(f"--{key}: {problem}")


#: loggers whose run folder is ``<save_dir>/<name>/<version>`` and that can continue a run there
_RESUMABLE_LOGGERS = ("gan_suite.tracking.CSVLogger", "gan_suite.tracking.WandbLogger", "gan_suite.tracking.csv_logger.CSVLogger", "gan_suite.tracking.wandb_logger.WandbLogger")


def resume_in_run_directory(cfg) -> Optional[str]:
    """Point the logger of a resumed run at the checkpoint's own run folder; returns that folder.

    ``--ckpt_path <save_dir>/<name>/<version>/checkpoints/X.ckpt`` with a logger of the same
    ``save_dir`` and ``name`` and no explicit version continues in ``<version>`` (config.yaml,
    checkpoints, samples, metrics.csv) instead of opening a new one. Says so on stderr.
    """
    from gan_suite.safe_files import load_tensors

    ckpt = cfg.get("ckpt_path")
    if not ckpt or not os.path.isfile(str(ckpt)):
        return None
    checkpoints = os.path.dirname(os.path.abspath(str(ckpt)))
    run_dir = os.path.dirname(checkpoints)
    logger = cfg.get("trainer.logger") if "trainer.logger" in cfg else None
    if os.path.basename(checkpoints) != "checkpoints" or logger is None or isinstance(logger, (bool, list)):
        return None
    class_path, init = getattr(logger, "class_path", None), getattr(logger, "init_args", None)
    if class_path not in _RESUMABLE_LOGGERS or init is None or init.get("version") is not None:
        return None
    save_dir, name = init.get("save_dir") or ".", init.get("name")
    if name is None or os.path.abspath(os.path.join(save_dir, str(name))) != os.path.dirname(run_dir):
        return None
    state = load_tensors(str(ckpt), "--ckpt_path checkpoint")
    init["version"] = os.path.basename(run_dir)
    import warnings

    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")  # it is the run's own
    if "csv_logger" in class_path or class_path.endswith("CSVLogger"):
        init["resume_step"] = int(state.get("global_step", 0))
    iteration = state.get("gan_suite", {}).get("iteration", "?")
    print(f"gan-suite: resuming {run_dir} at training step {iteration}", file=sys.stderr)
    return run_dir


def instantiation_error(err: ValueError) -> Exception:
    """One-line ConfigError from jsonargparse's report of a class that refused its arguments."""
    from gan_suite.errors import ConfigError, compact_report

    return ConfigError(compact_report(str(err))) if "Errors:" in str(err) else err


def _has_omegaconf() -> bool:
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        return False
    return True


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
        _lightning_cli(sys.argv[1:] if from_sys else argv)
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
