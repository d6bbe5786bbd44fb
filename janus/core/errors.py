"""Errors a user can act on: each message says what is wrong and what to do."""


class JanusError(Exception):
    """Base class for errors caused by input (config, data, weights), not by a bug."""


class ConfigError(JanusError, ValueError):
    """An impossible or unknown configuration value."""


class DataNotFoundError(JanusError, FileNotFoundError):
    """A data set is missing or not in the expected format."""


class WeightsNotFoundError(JanusError, FileNotFoundError):
    """Backbone weights (hub or local file) cannot be loaded."""


class RunBusyError(JanusError):
    """Another process is running the same run (its folder is locked)."""


class NonFiniteLossError(JanusError, FloatingPointError):
    """Training diverged: a loss became infinite or NaN."""


class GPUOutOfMemoryError(JanusError, MemoryError):
    """The accelerator ran out of memory; the message names the setting to lower."""


class Interrupted(JanusError):
    """Ctrl-C (SIGINT): what was finished and kept, and the command that continues."""
