"""Protection methods, as a registry of :class:`~.base.Method` objects (like ``defenses/``).

``METHODS`` maps each name to its method; :func:`load_protector` opens any protection file by
the method recorded in it and returns one callable, ``protector(x, y) -> delta``, so `poison`
treats every method alike. Importing this package registers GUE, REM, EM and TAP.
"""

from .base import (COMMON_OPTIONS, METHODS, Method, TrainReport, default_generator, get_method, load_protector,
                   register)
from . import gue, baselines  # noqa: F401  (registration)

__all__ = ["COMMON_OPTIONS", "METHODS", "Method", "TrainReport", "default_generator", "get_method", "load_protector",
           "register"]
