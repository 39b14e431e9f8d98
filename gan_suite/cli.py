"""The ``gan-suite`` command.

``gan-suite fit|validate --config configs/NAME.yaml`` is Lightning's CLI (dotted overrides,
``--print_config``); other sub-commands (``evaluate``, ...) are plain argparse programs
registered in :data:`COMMANDS`.

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
    "evaluate": "gan_suite.evaluation.evaluate:main",
    "benchmark": "gan_suite.benchmark.cli:benchmark_main",
    "report": "gan_suite.benchmark.cli:report_main",
}


def _lightning_cli(argv: Sequence[str]) -> None:
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.cli import LightningCLI, SaveConfigCallback

    import warnings

    import gan_suite.training  # noqa: F401  (registers the gan_ddp strategies)

    # Checkpoints are written after a training step's updates, which is what resuming needs;
    # Lightning's advice to save a pre-optimization state does not apply to a GAN step.
    warnings.filterwarnings("ignore", ".*Using ModelCheckpoint with manual optimization.*")
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")
    from gan_suite.data.base import GANDataModule
    from gan_suite.training.callbacks import SampleGrid
    from gan_suite.training.module import GANModule

    class GanSuiteCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.add_lightning_class_args(SampleGrid, "samples")
            parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
            parser.set_defaults({"checkpoint.save_last": True, "checkpoint.every_n_train_steps": 1000})

        # _parse_ckpt_path and _prepare_subcommand_kwargs are LightningCLI 2.x internals (2.6 checked):
        # the first reads --ckpt_path's hyper-parameters, the second hands the options to Trainer.fit.
        def _parse_ckpt_path(self) -> None:
            subcommand = self.config.get("subcommand")
            if subcommand:
                check_fit_options(self.config[subcommand])  # before Lightning reads the checkpoint
            super()._parse_ckpt_path()

        def instantiate_classes(self) -> None:
            try:
                super().instantiate_classes()
            except ValueError as err:  # jsonargparse wraps a class's own error in a union-type report
                raise instantiation_error(err) from None

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
        parser_kwargs={"prog": "gan-suite", "exit_on_error": False, **({"parser_mode": "omegaconf"} if _has_omegaconf() else {})},
    )


#: values of ``--ckpt_path`` that Lightning resolves itself (not file names)
_CKPT_PATH_KEYWORDS = ("last", "best", "hpc", "registry")


def check_fit_options(cfg) -> None:
    """Refuse out-of-range ``fit``/``validate`` options before anything is built (one-line UsageError).

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
