"""``gan-suite fit``: the LightningCLI of the suite, and checks of its arguments without training.

:class:`GanSuiteCLI` is LightningCLI over :class:`~gan_suite.training.module.GANModule` and
:class:`~gan_suite.data.base.GANDataModule` subclasses with three additions: the ``samples``
(:class:`~gan_suite.training.callbacks.SampleGrid`) and ``checkpoint``
(:class:`~gan_suite.training.callbacks.FinalStepCheckpoint`, a ModelCheckpoint) groups;
option checks before anything is built (:func:`check_fit_options`); and resuming inside the
checkpoint's own run folder (:func:`resume_in_run_directory`). :func:`parse_fit_config` and
:func:`check_fit_arguments` use the same parser for the benchmark runner, which must know that a
run's command line is valid before it starts.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from typing import Optional, Sequence

from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.cli import LightningCLI, SaveConfigCallback

import gan_suite.training  # noqa: F401  (registers the gan_ddp strategies)
from gan_suite.data.base import GANDataModule
from gan_suite.arguments import unwritable
from gan_suite.errors import ConfigError, UsageError
from gan_suite.safe_files import load_tensors
from gan_suite.run_layout import run_directory
from gan_suite.training.callbacks import FinalStepCheckpoint, SampleGrid, TrainingStepProgressBar
from gan_suite.training.module import GANModule


def _quiet_lightning() -> None:
    # A resumed run continues exactly (the data order is a function of (seed, step) and the noise
    # of (seed, rank, step, draw); tested), so Lightning's advice about non-resumable loaders does not apply.
    warnings.filterwarnings("ignore", ".*dataloader is not resumable.*")
    # Checkpoints are written after a training step's updates, which is what resuming needs;
    # Lightning's advice to save a pre-optimization state does not apply to a GAN step.
    warnings.filterwarnings("ignore", ".*Using ModelCheckpoint with manual optimization.*")
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")
    # main() removes --debug, so argv differs from sys.argv there: not the mistake this warns about
    warnings.filterwarnings("ignore", ".*not recommended to provide both args and command line arguments.*")


class _Checked(Exception):
    """Raised by a ``check_only`` CLI once the model and data module are built."""


class GanSuiteCLI(LightningCLI):
    """LightningCLI of ``gan-suite fit`` (see the module docstring).

    Args:
        check_only: parse, check and build the model and the data module, then raise
            :class:`_Checked` instead of building the Trainer.
    """

    def __init__(self, *args, check_only: bool = False, **kwargs) -> None:
        self.check_only = check_only
        super().__init__(*args, **kwargs)

    @staticmethod
    def subcommands() -> dict:
        # GANModule trains only: Lightning's validate/test/predict have no step to run here
        return {"fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"}}

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(SampleGrid, "samples")
        parser.add_lightning_class_args(FinalStepCheckpoint, "checkpoint")
        # every periodic checkpoint is kept (-1); --checkpoint.save_top_k=1 keeps only the newest
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.every_n_train_steps": 1000, "checkpoint.save_top_k": -1})

    # _set_seed, _parse_ckpt_path, _get and _prepare_subcommand_kwargs are LightningCLI 2.x internals
    # (2.6 checked): seeding, reading --ckpt_path's hyper-parameters, reading the instantiated
    # config, and handing the options to Trainer.fit.
    def _set_seed(self) -> None:
        if not self.check_only:  # a check leaves the global RNG alone
            super()._set_seed()

    def _parse_ckpt_path(self) -> None:
        subcommand = self.config.get("subcommand")
        if subcommand:
            state = check_fit_options(self.config[subcommand])  # before Lightning reads the checkpoint
            if state is not None and not self.check_only:
                resume_in_run_directory(self.config[subcommand], state)
        super()._parse_ckpt_path()

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as err:  # jsonargparse wraps a class's own error in a union-type report
            raise instantiation_error(err) from None

    def instantiate_trainer(self, **kwargs):
        if self.check_only:
            raise _Checked()
        trainer_cfg = self._get(self.config_init, "trainer", default={})
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


def _parser_kwargs() -> dict:
    return {"prog": "gan-suite", "exit_on_error": False, **({"parser_mode": "omegaconf"} if _has_omegaconf() else {})}


def run_fit(argv: Sequence[str]) -> None:
    """``gan-suite fit ARGS`` (``argv`` starts with ``fit``): train."""
    _quiet_lightning()
    GanSuiteCLI(
        GANModule,
        GANDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=None if list(argv) == sys.argv[1:] else list(argv),  # None: read sys.argv, no warning
        save_config_callback=RunDirectorySaveConfig,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,  # the module builds its two optimizers itself (g_/d_optimizer)
        parser_kwargs=_parser_kwargs(),
    )


def _check_only_cli(fit_args: Sequence[str], build: bool) -> GanSuiteCLI:
    """A GanSuiteCLI over ``fit_args`` (no ``fit``) that stops before the Trainer; errors are one line."""

    class ParseOnly(GanSuiteCLI):
        def instantiate_classes(self) -> None:
            check_fit_options(self.config)
            if build:
                super().instantiate_classes()

    _quiet_lightning()
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            return ParseOnly(
                GANModule, GANDataModule, subclass_mode_model=True, subclass_mode_data=True, args=list(fit_args),
                run=False, save_config_callback=None, auto_configure_optimizers=False, parser_kwargs=_parser_kwargs(),
                load_from_checkpoint_support=False, check_only=True,
            )
    except _Checked:
        return None
    except SystemExit:
        lines = [line.strip() for line in errors.getvalue().splitlines() if line.strip()]
        raise ConfigError(lines[-1] if lines else "the config does not parse") from None
    except Exception as err:
        if type(err).__name__ == "ArgumentError":
            from gan_suite.errors import compact_report

            raise ConfigError(compact_report(str(err)) or str(err)) from None
        raise


def parse_fit_config(fit_args: Sequence[str]) -> dict:
    """The resolved config (a plain dict, as ``config.yaml`` holds it) of ``gan-suite fit``
    arguments (without ``fit``); builds nothing. Raises ConfigError when they do not parse."""
    import yaml

    cli = _check_only_cli(fit_args, build=False)
    return yaml.safe_load(cli.parser.dump(cli.config, skip_validation=True))


def check_fit_arguments(fit_args: Sequence[str]) -> None:
    """Refuse ``gan-suite fit`` arguments (without ``fit``) that ``fit`` would refuse: unknown keys,
    values that the model or data module refuse, out-of-range options. Builds the model and the
    data module (no Trainer, no training); one-line ConfigError / UsageError otherwise."""
    _check_only_cli(fit_args, build=True)


#: values of ``--ckpt_path`` that Lightning resolves itself (not file names)
_CKPT_PATH_KEYWORDS = ("last", "best", "hpc", "registry")


def check_fit_options(cfg) -> Optional[dict]:
    """Refuse out-of-range ``fit`` options before anything is built (one-line UsageError).

    ``cfg``: the sub-command's parsed namespace. Checks step counts, the checkpoint to resume from
    (exists, tensors only) and that the output folders can be written. Returns the checkpoint's
    contents when ``--ckpt_path`` names a file, else None.
    """

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
        state = load_tensors(str(ckpt), "--ckpt_path checkpoint")  # one-line refusal before Lightning reads it
    else:
        state = None
    for key in ("trainer.default_root_dir", "trainer.logger.init_args.save_dir"):
        value = get(key)
        if isinstance(value, str) and value:
            problem = unwritable(value)
            if problem:
                raise UsageError(f"--{key}: {problem}")
    return state


#: loggers whose run folder is ``<save_dir>/<name>/<version>`` and that can continue a run there,
#: by class path -> whether it takes ``resume_step`` (the CSV logger keeps the rows before it)
_RESUMABLE_LOGGERS = {
    "gan_suite.tracking.CSVLogger": True, "gan_suite.tracking.csv_logger.CSVLogger": True,
    "gan_suite.tracking.WandbLogger": False, "gan_suite.tracking.wandb_logger.WandbLogger": False,
}


def resume_in_run_directory(cfg, state: dict) -> Optional[str]:
    """Point the logger of a resumed run at the checkpoint's own run folder; returns that folder.

    ``--ckpt_path <save_dir>/<name>/<version>/checkpoints/X.ckpt`` with a logger of the same
    ``save_dir`` and ``name`` and no explicit version continues in ``<version>`` (config.yaml,
    checkpoints, samples, metrics.csv) instead of opening a new one. Says so on stderr. ``state``:
    the checkpoint's contents (from :func:`check_fit_options`).
    """
    ckpt = cfg.get("ckpt_path")
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
    init["version"] = os.path.basename(run_dir)
    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")  # it is the run's own
    if _RESUMABLE_LOGGERS[class_path]:
        init["resume_step"] = int(state.get("global_step", 0))
    iteration = state.get("gan_suite", {}).get("iteration", "?")
    print(f"gan-suite: resuming {run_dir} at training step {iteration}", file=sys.stderr)
    return run_dir


def instantiation_error(err: ValueError) -> Exception:
    """One-line ConfigError from jsonargparse's report of a class that refused its arguments."""
    from gan_suite.errors import compact_report

    return ConfigError(compact_report(str(err))) if "Errors:" in str(err) else err


def _has_omegaconf() -> bool:
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        return False
    return True


