"""Lightning's WandbLogger, made safe for machines without network and for one folder per run.

Differences from :class:`pytorch_lightning.loggers.WandbLogger`:

* ``offline=None`` (the default) decides by itself: offline when WANDB_MODE is offline/dryrun or
  when no credentials exist (no WANDB_API_KEY, no netrc entry), so a run never waits for a login
  prompt or a server. An online start that fails (no network, server down) falls back to offline
  after ``init_timeout`` seconds instead of failing the training run.
* The run id is chosen at construction, so the run directory ``<save_dir>/<name>/<id>`` (the
  folder ModelCheckpoint, the sample grids and config.yaml use) is known before W&B starts, and
  W&B's own files go inside it: ``<save_dir>/<name>/<id>/wandb/offline-run-*/``.
* ``name`` is the run's group folder and display name; the W&B project is ``project``
  (default $WANDB_PROJECT or 'gan-suite').
* Images given as float arrays in [0, 1] are converted to uint8 (wandb >= 0.31 saves them black).
* :meth:`log_summary` writes final values into the run summary; :meth:`log_table` also takes a
  pandas DataFrame as its second argument.
* :meth:`finalize` finishes the W&B run (Lightning's leaves it open until the process exits).
"""

from __future__ import annotations

import os
import secrets
import string
import warnings
from typing import Any, Literal, Mapping, Optional, Sequence, Union

import numpy as np
from pytorch_lightning.loggers import WandbLogger as _LightningWandbLogger
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities import rank_zero_only

from gan_suite.tracking.credentials import resolve_offline

#: default W&B project when neither ``project`` nor $WANDB_PROJECT is given
DEFAULT_PROJECT = "gan-suite"


def new_run_id(length: int = 8) -> str:
    """A random W&B run id: lowercase letters and digits (what ``wandb.util.generate_id`` makes)."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


class WandbLogger(_LightningWandbLogger):
    """Weights & Biases logger for ``trainer.logger`` (``class_path: gan_suite.tracking.WandbLogger``).

    Args:
        name: run group folder under ``save_dir`` and W&B display name (e.g. the config's name).
        save_dir: root of the run directories.
        version: W&B run id (default: a new random id); giving an existing id resumes that run.
        offline: True / False, or None to decide from WANDB_MODE and the available credentials.
        dir: where W&B writes its files (default: the run directory).
        id: same as ``version``.
        project, entity, group, job_type, tags, notes: passed to ``wandb.init``.
        log_model: upload checkpoints as artifacts (online only).
        prefix, checkpoint_name: see Lightning's WandbLogger.
        init_timeout: seconds ``wandb.init`` may wait for the server before falling back to offline.
        silent: no W&B messages on the terminal.
        **kwargs: further ``wandb.init`` arguments (``settings``, ``config``, ...).
    """

    def __init__(
        self,
        name: Optional[str] = None,
        save_dir: str = "runs",
        version: Optional[str] = None,
        offline: Optional[bool] = None,
        dir: Optional[str] = None,
        id: Optional[str] = None,
        project: Optional[str] = None,
        entity: Optional[str] = None,
        group: Optional[str] = None,
        job_type: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
        notes: Optional[str] = None,
        log_model: Union[Literal["all"], bool] = False,
        prefix: str = "",
        checkpoint_name: Optional[str] = None,
        init_timeout: float = 30.0,
        silent: bool = False,
        **kwargs: Any,
    ) -> None:
        # jsonargparse passes every wandb.init argument it finds, None when not set: drop those
        kwargs = {key: value for key, value in kwargs.items() if value is not None}
        mode = kwargs.pop("mode", None)
        #: WANDB_MODE=disabled (or mode='disabled'): W&B is off, nothing is written or sent
        self.disabled = (mode or os.environ.get("WANDB_MODE", "")).lower() == "disabled"
        if mode in ("offline", "dryrun"):
            offline = True
        elif mode is not None and not self.disabled:
            kwargs["mode"] = mode  # 'online' / 'shared' go to wandb.init as given
        self.offline = False if self.disabled else resolve_offline(offline)
        if log_model and self.offline:
            warnings.warn("W&B runs offline: log_model is ignored (checkpoints stay in the run directory)", stacklevel=2)
            log_model = False
        init_kwargs = {key: value for key, value in (("entity", entity), ("group", group), ("job_type", job_type), ("notes", notes)) if value is not None}
        if tags is not None:
            init_kwargs["tags"] = list(tags)
        if self.offline:
            init_kwargs["mode"] = "offline"
        if self.disabled:
            init_kwargs["mode"] = "disabled"
            log_model = False
        self._explicit_wandb_dir = dir
        self.init_timeout = init_timeout
        self.silent = silent
        super().__init__(
            name=name,
            save_dir=save_dir,
            version=version or id or new_run_id(),
            offline=False,  # the mode goes to wandb.init: Lightning's switch rewrites os.environ["WANDB_MODE"]
            project=project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
            log_model=log_model,
            prefix=prefix,
            checkpoint_name=checkpoint_name,
            **init_kwargs,
            **kwargs,
        )
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)  # wandb 0.31 warns about the setting even when None

    # ------------------------------------------------------------------ where things go
    @property
    def name(self) -> Optional[str]:
        """The folder of this run's group under ``save_dir`` (the ``name`` argument, else the project)."""
        return self._name or self._project

    @property
    def run_dir(self) -> str:
        """``<save_dir>/<name>/<id>``: config.yaml, checkpoints/, samples/ and wandb/ of this run."""
        return os.path.join(self.save_dir or ".", str(self.name), str(self.version))

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is None:
            wandb_dir = self._explicit_wandb_dir or self.run_dir
            if not self.disabled:
                os.makedirs(wandb_dir, exist_ok=True)
            self._wandb_init["dir"] = wandb_dir
            if "settings" not in self._wandb_init:
                import wandb

                self._wandb_init["settings"] = wandb.Settings(init_timeout=self.init_timeout, silent=self.silent)
            try:
                return super().experiment
            except Exception as err:  # no network, server down, bad key: keep training, offline
                if self.offline:
                    raise
                warnings.warn(f"W&B could not start online ({type(err).__name__}: {err}); logging offline instead", stacklevel=2)
                import wandb

                wandb.teardown()  # the failed attempt still holds the run id in W&B's service process
                self.offline = True
                self._wandb_init["mode"] = "offline"
                self._experiment = None
                return super().experiment
        return self._experiment

    # ------------------------------------------------------------------ what is logged
    @rank_zero_only
    def log_image(self, key: str, images: list, step: Optional[int] = None, **kwargs: Any) -> None:
        """Log pictures: uint8 [H, W, 3] / [H, W] arrays, float arrays in [0, 1], PIL images or file paths."""
        if not isinstance(images, list):
            raise TypeError(f'Expected a list as "images", found {type(images)}')
        super().log_image(key, [_displayable(image) for image in images], step=step, **kwargs)

    @rank_zero_only
    def log_summary(self, values: Mapping[str, Any]) -> None:
        """Write final values (e.g. the evaluation metrics of the last checkpoint) into the run summary."""
        self.experiment.summary.update(dict(values))

    @rank_zero_only
    def log_table(self, key: str, columns: Any = None, data: Optional[list] = None, dataframe: Any = None, step: Optional[int] = None) -> None:
        """Log a table: ``log_table(key, dataframe)``, or ``columns`` and ``data`` rows."""
        if dataframe is None and hasattr(columns, "to_dict") and hasattr(columns, "columns"):
            columns, dataframe = None, columns
        super().log_table(key, columns=columns, data=data, dataframe=dataframe, step=step)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Upload pending checkpoints (online, on success) and finish the W&B run."""
        super().finalize(status)
        if self._experiment is not None and hasattr(self._experiment, "finish"):
            self._experiment.finish(exit_code=0 if status in ("success", "finished") else 1)
            self._experiment = None  # a later log call resumes the same run id as a new segment


def _displayable(image: Any) -> Any:
    """uint8 [H, W(, C)] from a float array / tensor in [0, 1] or an integer one in [0, 255] ([C, H, W] tensors become HWC)."""
    if hasattr(image, "detach"):  # torch tensor
        image = image.detach().cpu()
        if image.dim() == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    if isinstance(image, np.ndarray) and image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.integer) or image.dtype == np.bool_:
            return np.clip(image.astype(np.int64) * (255 if image.dtype == np.bool_ else 1), 0, 255).astype(np.uint8)
        image = (np.clip(image.astype(np.float64), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return image
