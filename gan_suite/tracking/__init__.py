"""Experiment tracking: the W&B and CSV loggers used by the configs, and evaluation results into a run.

    trainer:
      logger:
        class_path: gan_suite.tracking.WandbLogger
        init_args: {save_dir: runs, name: dcgan_mnist}

See docs/tracking.md.
"""

from gan_suite.tracking.csv_logger import CSVLogger
from gan_suite.tracking.credentials import has_credentials, resolve_offline
from gan_suite.tracking.evaluation_logging import log_evaluation, numeric_metrics, reopen_run_logger
from gan_suite.tracking.wandb_logger import WandbLogger, new_run_id

__all__ = ["CSVLogger", "WandbLogger", "new_run_id", "has_credentials", "resolve_offline", "log_evaluation", "numeric_metrics", "reopen_run_logger"]
