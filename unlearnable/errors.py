"""One exception family for the whole library.

The CLI catches :class:`UnlearnableError` once, prints its message as one red line and exits
with code 1. Messages say what went wrong *and* what to do about it.
"""


class UnlearnableError(Exception):
    """Base class of every error the library raises on purpose."""


class BudgetError(UnlearnableError):
    """An L-inf budget string could not be parsed or is out of range."""


class DataError(UnlearnableError):
    """An input folder or image is unusable."""


class GeneratorFileError(UnlearnableError):
    """A protection file is not ours, damaged, tampered with or too new."""


class GuaranteeError(UnlearnableError):
    """A protected image would have moved a pixel further than the budget allows."""


class ConfigError(UnlearnableError):
    """Options that cannot go together, or a value a method does not know: a usage error (exit 2)."""


class EncoderUnavailableError(UnlearnableError):
    """The ImageNet encoder that keys a protection is not installed, or not the weights it needs."""
