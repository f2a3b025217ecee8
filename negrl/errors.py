"""Errors a user can act on. The CLI prints their message on one line instead of a traceback."""


class NegrlError(Exception):
    """Base class: anything raised as a NegrlError is reported as ``negrl: error: <message>``."""


class ConfigError(NegrlError, ValueError):
    """A configuration value is missing, unknown or of the wrong type; the message names the key."""


class DataError(NegrlError, ValueError):
    """A data file is missing or malformed; the message names the file and line."""
