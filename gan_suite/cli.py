"""The ``gan-suite`` command.

``gan-suite fit|validate --config configs/NAME.yaml`` is Lightning's CLI (dotted overrides,
``--print_config``); other sub-commands (``evaluate``, ...) are plain argparse programs
registered in :data:`COMMANDS`. A :class:`~gan_suite.errors.GanSuiteError` ends the program with a
one-line message and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import importlib
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

    GanSuiteCLI(
        GANModule,
        GANDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=None if list(argv) == sys.argv[1:] else list(argv),  # None: read sys.argv, no warning
        save_config_callback=RunDirectorySaveConfig,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "gan-suite", "parser_mode": "omegaconf"} if _has_omegaconf() else {"prog": "gan-suite"},
    )


def _has_omegaconf() -> bool:
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        return False
    return True


def _resolve(target: str) -> Callable[[Sequence[str]], Optional[int]]:
    module_name, _, func = target.partition(":")
    return getattr(importlib.import_module(module_name), func)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``gan-suite`` and ``python -m gan_suite``; returns the exit code."""
    from gan_suite.errors import GanSuiteError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in COMMANDS:
            return int(_resolve(COMMANDS[argv[0]])(argv[1:]) or 0)
        _lightning_cli(argv)
    except GanSuiteError as err:
        print(f"gan-suite: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
