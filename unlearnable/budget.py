"""Perturbation budgets, parsed once at the edge.

People say "8/255"; we keep that spelling for metadata and the float for the maths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

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


def apply_budget(original: torch.Tensor, delta: torch.Tensor, levels: int, rows: int = 256) -> torch.Tensor:
    """Add a perturbation to a uint8 (H, W, 3) picture, rounded, within ``levels`` levels.

    ``delta`` is (3, H, W) on [0, 1] scale. The step is rounded to whole levels (not
    truncated, which would drop small negative changes) and added in 16-bit integers, ``rows``
    rows at a time: on a 24-megapixel photo the temporaries then stay small and are reused
    instead of being allocated at full size, which is faster.
    """
    out = torch.empty_like(original)
    for top in range(0, original.shape[0], rows):
        step = delta[:, top:top + rows].permute(1, 2, 0).mul(255).round_().clamp_(-levels, levels).to(torch.int16)
        out[top:top + rows] = step.add_(original[top:top + rows]).clamp_(0, 255)
    return out


def full_amplitude(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Every value moved by the whole budget ``eps`` in the direction the generator chose (0 stays 0).

    The keyed generators plant one pattern per key (98% of the built-in generator's energy on
    CIFAR-10 is its key's mean pattern) but leave many values inside the budget; at the whole
    budget the same pattern protected more on small folders, not on a large one
    (docs/label-free.md, "The whole budget"). `poison --amplitude full`.
    """
    return delta.sign().mul_(eps)
