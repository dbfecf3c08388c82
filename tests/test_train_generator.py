from dataclasses import replace

import pytest
import torch

from unlearnable.errors import UnlearnableError
from unlearnable.io.genfile import load_generator
from unlearnable.synthetic import make_synthetic_folder
from unlearnable.game.bome import BomeSettings
from unlearnable.training.generator import PRESETS, checkpoint_path, stretch_schedule, train_generator

CPU = torch.device("cpu")


@pytest.fixture
def small_set(tmp_path):
    make_synthetic_folder(tmp_path / "train", num_classes=3, per_class=16, size=16)
    return tmp_path / "train"


def _tiny(**kw):
    kw.setdefault("min_steps", 0)
    return replace(PRESETS["cpu"], warmup_epochs=1, epochs=2, batch_size=16, image_size=16, **{"bome": BomeSettings(inner_steps=1), **kw})


def test_small_folders_get_the_steps_of_a_large_one():
    cpu = PRESETS["cpu"]
    assert stretch_schedule(cpu, 10_000) == cpu  # 12 epochs x 79 steps = 948
    small = stretch_schedule(cpu, 2_000)  # 16 steps an epoch: x5
    assert (small.warmup_epochs, small.epochs) == (60, 0)
    assert small.total_epochs * 16 >= cpu.min_steps
    tiny = stretch_schedule(cpu, 200)  # 2 steps an epoch: capped at 150 epochs, not 474
    assert tiny.total_epochs <= 150 and tiny.total_epochs * 2 >= 288
    explicit = replace(cpu, min_steps=0)
    assert stretch_schedule(explicit, 100) == explicit
    paper_at = stretch_schedule(replace(PRESETS["paper-at"], min_steps=1000), 2560)  # 10 steps an epoch
    assert paper_at.epochs == 150 and paper_at.milestones == (120, 140)


def test_the_cpu_preset_plays_the_game_only_when_an_option_of_the_game_asks_for_it():
    from unlearnable.budget import parse_budget
    from unlearnable.methods.gue import GueMethod

    def schedule(**given):
        s = GueMethod().settings("cpu", parse_budget("8/255"), 32, 0, given)
        return s.warmup_epochs, s.epochs, s.min_steps

    assert schedule() == (12, 0, 948)  # min-min alone
    for given in ({"solver": "tgda"}, {"solver": "bome"}, {"inner_steps": 3}, {"adv_eps": parse_budget("4/255")}):
        assert schedule(**given) == (8, 4, 948), given
    assert schedule(adv_eps=parse_budget("0", allow_zero=True)) == (12, 0, 948)
    assert schedule(solver="tgda", epochs=2) == (12, 2, 0)  # explicit epochs mean exactly that


def test_writes_a_generator_with_metadata(tmp_path, small_set):
    out = tmp_path / "g.safetensors"
    result = train_generator(small_set, out, _tiny(keys="folders"), CPU)
    gen, info = load_generator(out)
    assert result.images == 48 and result.epochs_done == 3
    assert info.class_names == ["class0", "class1", "class2"] and info.config.num_classes == 3
    assert info.config.keys.source == "classes" and not info.needs_labels  # unsorted pictures take the nearest class
    assert info.training["warmup_epochs"] == 1 and info.solver == "bome" and info.victim == "small-cnn"
    assert not checkpoint_path(out).exists()
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        assert gen(x, torch.tensor([0, 1, 2, 0])).abs().max() <= 8 / 255 + 1e-7


def test_interrupted_training_resumes_to_the_same_result(tmp_path, small_set):
    reference = tmp_path / "ref.safetensors"
    train_generator(small_set, reference, _tiny(), CPU)

    out = tmp_path / "g.safetensors"

    def stop(s):
        if s["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_generator(small_set, out, _tiny(), CPU, on_step=stop)
    assert checkpoint_path(out).exists() and not out.exists()
    with pytest.raises(UnlearnableError, match="--resume"):
        train_generator(small_set, out, _tiny(), CPU)
    with pytest.raises(UnlearnableError, match="different options"):
        train_generator(small_set, out, _tiny(bome=BomeSettings(inner_steps=1, inner_lr=0.5)), CPU, resume=True)
    train_generator(small_set, out, _tiny(), CPU, resume=True)
    a, _ = load_generator(reference)
    b, _ = load_generator(out)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_a_paused_run_writes_its_generator_so_far_and_resumes_to_the_same_result(tmp_path, small_set):
    reference = tmp_path / "ref.safetensors"
    train_generator(small_set, reference, _tiny(), CPU)
    out = tmp_path / "g.safetensors"
    paused = train_generator(small_set, out, _tiny(), CPU, pause_after=1 / 3)  # 3 epochs: one
    assert paused.paused and paused.epochs_done == 1 and checkpoint_path(out).exists()
    early, info = load_generator(out)  # a protection file as it stands after one epoch
    assert info.training["paused_at_epoch"] == 1
    done = train_generator(small_set, out, _tiny(), CPU, resume=True)
    assert not done.paused and done.epochs_done == 3 and not checkpoint_path(out).exists()
    a, _ = load_generator(reference)
    b, info = load_generator(out)
    assert "paused_at_epoch" not in info.training
    for (name, pa), pb, pe in zip(a.state_dict().items(), b.state_dict().values(), early.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pe) for pa, pe in zip(a.state_dict().values(), early.state_dict().values()))


def test_fraction_trains_on_a_subset(tmp_path, small_set):
    result = train_generator(small_set, tmp_path / "g.safetensors", _tiny(fraction=0.5), CPU)
    assert result.images == 24


def test_needs_two_classes(tmp_path):
    make_synthetic_folder(tmp_path / "one", num_classes=1, per_class=4, size=8)
    with pytest.raises(UnlearnableError, match="at least 2 class folders"):
        train_generator(tmp_path / "one", tmp_path / "g.safetensors", _tiny(keys="folders"), CPU)
    with pytest.raises(UnlearnableError, match="too few for 5 clusters"):
        train_generator(tmp_path / "one", tmp_path / "g.safetensors", _tiny(clusters=5), CPU)


@pytest.mark.slow
def test_demo_end_to_end_shows_a_clear_drop(tmp_path):
    """The README's demo, for real (a few minutes on 2 CPU cores): run with `pytest -m slow`."""
    from unlearnable.budget import parse_budget
    from unlearnable.demo import run_demo

    result = run_demo(tmp_path / "demo", parse_budget("8/255"), CPU)
    assert result.max_change_levels <= result.budget_levels == 8
    assert result.clean_accuracy - result.protected_accuracy > 0.15


def test_the_game_can_play_against_the_pretrained_network(tmp_path, small_set):
    """--victim efficientnet-lite0-probe: the follower is the shipped ImageNet network with a new
    last layer on frozen features; the generator learns through the frozen network."""
    out = tmp_path / "g.safetensors"
    config = replace(_tiny(keys="folders", victim="efficientnet-lite0-probe", robust=()), epochs=1)
    result = train_generator(small_set, out, config, CPU)
    gen, info = load_generator(out)
    assert result.epochs_done == 2 and info.victim == "efficientnet-lite0-probe"
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        delta = gen(x, torch.tensor([0, 1, 2, 0]))
    assert 0 < delta.abs().max() <= 8 / 255 + 1e-7


def test_the_pattern_generator_trains_one_pattern_per_key_and_needs_keys(tmp_path, small_set):
    from unlearnable.models.unet import KeyPatternGenerator

    out = tmp_path / "p.safetensors"
    train_generator(small_set, out, _tiny(keys="folders", generator="patterns"), CPU)
    gen, info = load_generator(out)
    assert isinstance(gen, KeyPatternGenerator) and info.config.patterns == 16  # the training size
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        d = gen(x, torch.tensor([0, 0, 1]))
        assert torch.equal(d[0], d[1]) and not torch.equal(d[0], d[2]) and d.abs().max() <= 8 / 255 + 1e-7
    with pytest.raises(UnlearnableError, match="needs keys: drop --image-only"):
        train_generator(small_set, tmp_path / "q.safetensors", _tiny(generator="patterns", label_aware=False), CPU)


@pytest.mark.parametrize("preset, given", [("cpu", {"generator": "patterns", "label_aware": False}),
                                           ("paper", {"generator": "patterns"})])
def test_the_pattern_generator_without_keys_is_refused_in_one_line(preset, given):
    from unlearnable.budget import parse_budget
    from unlearnable.errors import ConfigError
    from unlearnable.methods.gue import GueMethod

    with pytest.raises(ConfigError, match="needs keys: drop --image-only"):
        GueMethod().settings(preset, parse_budget("8/255"), 32, 0, given)
    assert GueMethod().settings("paper", parse_budget("8/255"), 32, 0, {**given, "label_aware": True}).generator == "patterns"
