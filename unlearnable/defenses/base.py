"""One small interface for every countermeasure a would-be trainer might try.

A defense either *purifies* the training pictures before training (``purify``: uint8
(N, 3, H, W) -> uint8 of the same shape; test pictures stay clean), or changes *training*
(``batch``: (x, y_soft, generator) -> (x, y_soft) on each batch, or ``recipe`` overrides such
as adversarial training). `defend` trains the same victim recipe on the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Defense:
    name: str
    description: str

    def purify(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocess uint8 training pictures (N, 3, H, W); identity unless overridden."""
        return x

    def batch(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Training-time transform of a float batch and its soft labels; identity by default."""
        return x, y

    def recipe_overrides(self) -> dict:
        """Changes to the victim recipe (e.g. adversarial training)."""
        return {}

    @property
    def changes_batches(self) -> bool:
        return type(self).batch is not Defense.batch

    @property
    def changes_images(self) -> bool:
        return type(self).purify is not Defense.purify


def in_chunks(x: torch.Tensor, fn, chunk: int = 1024) -> torch.Tensor:
    """Apply ``fn`` to float [0, 1] chunks of uint8 ``x``; back to uint8 by rounding."""
    out = torch.empty_like(x)
    for i in range(0, len(x), chunk):
        out[i:i + chunk] = (fn(x[i:i + chunk].float() / 255) * 255).round().clamp(0, 255).to(torch.uint8)
    return out
