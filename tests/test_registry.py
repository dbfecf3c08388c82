"""Every table of named choices is one Registry: an unknown name is refused with the list."""

import pytest

from unlearnable.defenses import DEFENSES
from unlearnable.errors import ConfigError
from unlearnable.methods import METHODS
from unlearnable.models.pretrained import PRETRAINED
from unlearnable.models.unet import GENERATOR_PRESETS
from unlearnable.models.victims import VICTIMS
from unlearnable.registry import Registry
from unlearnable.robust import ROBUST
from unlearnable.training.generator import PRESETS
from unlearnable.training.victim import RECIPES


def test_a_registry_registers_gets_and_refuses_with_the_choices():
    reg = Registry("--colour", {"red": 1})
    assert reg.register("blue", 2) == 2 and reg.names() == ("red", "blue") and reg.get("blue") == 2
    with pytest.raises(ConfigError, match=r"unknown --colour 'green'; choose one of red, blue"):
        reg.get("green")
    with pytest.raises(ConfigError, match=r"unknown --paint 'green'"):
        reg.get("green", "--paint")
    with pytest.raises(ValueError):
        reg.register("", 3)


@pytest.mark.parametrize("registry", [METHODS, DEFENSES, VICTIMS, RECIPES, PRESETS, GENERATOR_PRESETS, PRETRAINED, ROBUST])
def test_every_table_of_choices_is_a_registry(registry):
    assert isinstance(registry, Registry) and len(registry) >= 1
    with pytest.raises(ConfigError, match="choose one of " + ", ".join(registry)):
        registry.get("no-such-name")


def test_robust_and_defend_call_one_operation_by_one_name():
    shared = {"grayscale", "jpeg", "downscale", "gaussian", "bit-depth"}
    assert set(ROBUST) == shared and shared <= set(DEFENSES)
