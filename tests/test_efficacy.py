"""Protection really lowers a trainer's accuracy: the whole pipeline on tiny data, in CI."""

from dataclasses import replace

import torch

from unlearnable.evaluate import EvaluationConfig, evaluate_protection
from unlearnable.poison import PoisonConfig, protect_folder
from unlearnable.synthetic import write_folder
from unlearnable.game.bome import BomeSettings
from unlearnable.training.generator import PRESETS, train_generator
from unlearnable.training.victim import RECIPES

from .conftest import gratings

CPU = torch.device("cpu")


def test_protected_pictures_teach_a_trainer_much_less(tmp_path):
    """The trainer trains to convergence (30 epochs of 10 steps), so the originals teach it
    every class and the gap is the protection's, not the luck of a short training. One seed:
    seeds 1 and 2 pass at one thread, seed 1 fails at two (docs/DEVELOPMENT.md, "Tests")."""
    seed = 0
    names = [f"class{c}" for c in range(8)]
    write_folder(tmp_path / "train", *gratings(40, seed=0), names)
    write_folder(tmp_path / "test", *gratings(20, seed=1), names)
    config = replace(PRESETS["cpu"], warmup_epochs=30, epochs=1, min_steps=0, batch_size=32, image_size=16, gen_lr=3e-3,
                     bome=BomeSettings(inner_steps=1), keys="folders", seed=seed)
    train_generator(tmp_path / "train", tmp_path / "gen.safetensors", config, CPU)
    poisoned = protect_folder(tmp_path / "train", tmp_path / "gen.safetensors", tmp_path / "prot", PoisonConfig(), CPU)
    assert poisoned.protected == 320 and poisoned.max_change_levels <= 8
    result = evaluate_protection(tmp_path / "prot", tmp_path / "test", tmp_path / "train",
                                 EvaluationConfig(recipe=replace(RECIPES["quick"], epochs=30, batch_size=32), image_size=16,
                                                  seed=seed), CPU)
    # chance is 12.5%; the originals teach (nearly) every picture, the protected copies much less
    assert result.clean_accuracy >= 0.9, result.clean_accuracy
    assert result.clean_accuracy - result.accuracy >= 0.1, (result.clean_accuracy, result.accuracy)
