"""Exceptions with one-line messages, printed by the CLI without a traceback."""


class GanSuiteError(Exception):
    """Base class: a problem the user can fix, stated in one line."""


class ConfigError(GanSuiteError):
    """A configuration value is invalid or inconsistent with another one."""


class DataUnavailableError(GanSuiteError):
    """A dataset is not on disk and cannot be downloaded."""


class WeightsUnavailableError(GanSuiteError):
    """Pretrained weights (e.g. Inception) are not on disk and cannot be downloaded."""


class NonFiniteLossError(GanSuiteError):
    """A loss became NaN or inf during training."""


class NonFiniteSamplesError(GanSuiteError):
    """Generated samples contain NaN or inf values."""
