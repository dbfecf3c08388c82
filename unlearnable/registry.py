"""One small registry for every table of named choices (methods, defenses, victims, presets, ...).

A :class:`Registry` is a dict from a name to its entry, so ``name in REG``, ``REG[name]`` and
``list(REG)`` work as usual; :meth:`Registry.get` refuses an unknown name with the list of
choices, the one message every ``--option NAME`` gives, and ``--help`` lists :meth:`Registry.names`.
"""

from __future__ import annotations

from typing import Generic, Iterable, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """Name -> entry. ``what`` names the choice in messages, e.g. "--defense"."""

    def __init__(self, what: str, entries: Iterable[tuple[str, T]] | dict[str, T] = ()):
        super().__init__(entries)
        self.what = what

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` (a later registration of the same name replaces it)."""
        if not name:
            raise ValueError(f"a {self.what} entry needs a name")
        self[name] = entry
        return entry

    def get(self, name: str, what: str | None = None) -> T:  # type: ignore[override]
        """The entry of ``name``; an unknown name is refused, listing the choices (``what``: the
        option's name where it is not the usual one, e.g. --victim for the --arch table)."""
        if name not in self:
            raise ConfigError(f"unknown {what or self.what} {name!r}; choose one of {', '.join(self)}")
        return self[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self)
