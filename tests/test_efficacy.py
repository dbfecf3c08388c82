"""Protection really lowers a trainer's accuracy: the whole pipeline on tiny data, in CI."""

from dataclasses import replace

import torch

from unlearnable.evaluate import EvaluationConfig, evaluate_protection
from unlearnable.poison import PoisonConfig, protect_folder
from unlearnable.synthetic import write_folder
from unlearnable.game.bome import BomeSettings
from unlearnable.training.generator import PRESETS, train_generator
from unlearnable.training.victim import RECIPES

CPU = torch.device("cpu")


def gratings(per_class: int, seed: int, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Eight classes a flip leaves alone: stripes across or down (class % 2) at one of four
    frequencies (class // 2), random phase and tint, faint under noise. A CNN learns them in a
    few epochs, more slowly than a planted shortcut."""
    g = torch.Generator().manual_seed(seed)
    n = per_class * 8
    y = torch.arange(n) % 8
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    freq = (0.5 + 0.45 * (y // 2).float() + 0.1 * torch.rand(n, generator=g))[:, None, None]
    phase = (2 * torch.pi * torch.rand(n, generator=g))[:, None, None]
    across = (y % 2 == 0)[:, None, None]
    wave = torch.sin(freq * torch.where(across, yy[None], xx[None]) + phase)
    tint = 0.3 + 0.4 * torch.rand(n, 3, 1, 1, generator=g)
    img = tint + 0.07 * wave[:, None] + 0.07 * torch.randn(n, 3, size, size, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), y


def test_protected_pictures_teach_a_trainer_much_less(tmp_path):
    names = [f"class{c}" for c in range(8)]
    write_folder(tmp_path / "train", *gratings(40, seed=0), names)
    write_folder(tmp_path / "test", *gratings(20, seed=1), names)
    config = replace(PRESETS["cpu"], warmup_epochs=30, epochs=1, min_steps=0, batch_size=32, image_size=16, gen_lr=3e-3,
                     bome=BomeSettings(inner_steps=1), keys="folders", seed=0)
    train_generator(tmp_path / "train", tmp_path / "gen.safetensors", config, CPU)
    poisoned = protect_folder(tmp_path / "train", tmp_path / "gen.safetensors", tmp_path / "prot", PoisonConfig(), CPU)
    assert poisoned.protected == 320 and poisoned.max_change_levels <= 8
    result = evaluate_protection(tmp_path / "prot", tmp_path / "test", tmp_path / "train",
                                 EvaluationConfig(recipe=replace(RECIPES["quick"], epochs=10), image_size=16), CPU)
    # chance is 12.5%; the originals teach far more than that, the protected copies much less
    assert result.clean_accuracy >= 0.5, result.clean_accuracy
    assert result.clean_accuracy - result.accuracy >= 0.1, (result.clean_accuracy, result.accuracy)
