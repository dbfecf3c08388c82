"""Perturbation budgets, parsed once at the edge.

People say "8/255"; we keep that spelling for metadata and the float for the maths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from .errors import BudgetError


@dataclass(frozen=True)
class Budget:
    """An L-inf budget on images in [0, 1]: ``text`` as the user wrote it, ``value`` as float."""

    text: str
    value: float

    @property
    def levels(self) -> int:
        """Largest change of an 8-bit pixel the budget allows: floor(eps * 255).

        The small tolerance keeps 8/255 at 8 levels despite float rounding.
        """
        return int(math.floor(self.value * 255 + 1e-6))


def parse_budget(text: str, *, allow_zero: bool = False, name: str = "--eps") -> Budget:
    """Parse "8/255", "0.0314" or "16/255" into a :class:`Budget` in (0, 1].

    A bare integer such as "8" is refused: it almost always means 8/255, and guessing
    would silently give a budget 255 times larger.
    """
    raw = str(text).strip()
    try:
        if "/" in raw:
            num, den = raw.split("/", 1)
            value = float(Fraction(num.strip()) / Fraction(den.strip()))
        else:
            value = float(raw)
    except (ValueError, ZeroDivisionError):
        raise BudgetError(f"{name} {text!r} is not a number; write it like 8/255 or 0.0314") from None
    if not math.isfinite(value):
        raise BudgetError(f"{name} {text!r} is not finite; write it like 8/255")
    if value > 1:
        if "/" not in raw and value == int(value):
            raise BudgetError(f"{name} {text!r} is ambiguous: did you mean {int(value)}/255?")
        raise BudgetError(f"{name} {text!r} is above 1; budgets are fractions of the pixel range, e.g. 8/255")
    if value < 0 or (value == 0 and not allow_zero):
        raise BudgetError(f"{name} {text!r} must be greater than 0, e.g. 8/255")
    if raw.replace(" ", "") in {"0", "0.0", "0/255"}:
        raw = "0"
    return Budget(text=raw.replace(" ", ""), value=value)


VISIBLE = 16 / 255  # above this a perturbation is plainly visible on most pictures


def check_invisible(budget: Budget, name: str = "--eps") -> None:
    """Refuse budgets above 16/255: the protection would show (the literature uses 8/255)."""
    if budget.value > VISIBLE + 1e-9:
        raise BudgetError(
            f"{name} {budget.text} lets pixels move {budget.levels} levels, which is plainly visible; "
            "use 16/255 or less (8/255 is usual), or add --allow-visible if you mean it"
        )
