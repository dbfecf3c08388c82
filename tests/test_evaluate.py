from dataclasses import replace

import pytest
import json

import torch
from PIL import Image

from unlearnable.attacks.pgd import PGD, trades_loss
from unlearnable.errors import DataError
from unlearnable.evaluate import EvaluationConfig, evaluate_protection
from unlearnable.io.plot import ORIGINAL_LABEL, PROTECTED_LABEL, plot_curves, plot_defenses
from unlearnable.models.victims import VICTIMS, build_victim
from unlearnable.synthetic import make_synthetic_folder
from unlearnable.training.victim import RECIPES

CPU = torch.device("cpu")
TINY = replace(RECIPES["quick"], epochs=2, batch_size=16)


@pytest.fixture
def folders(tmp_path):
    make_synthetic_folder(tmp_path / "train", num_classes=2, per_class=10, size=16, seed=1)
    make_synthetic_folder(tmp_path / "test", num_classes=2, per_class=5, size=16, seed=2)
    return tmp_path


def test_partial_protection_reports_three_settings(folders):
    cfg = EvaluationConfig(recipe=TINY, image_size=16, protect_ratio=0.4, runs=2)
    res = evaluate_protection(folders / "train", folders / "test", folders / "train", cfg, CPU)
    names = [s["name"] for s in res.settings]
    assert names == ["40% protected", "clean", "clean part only"]
    assert [s["train_images"] for s in res.settings] == [20, 20, 12]
    assert all(len(s["runs"]) == 2 and len(s["runs"][0]["history"]) == 2 for s in res.settings)
    assert 0 <= res.accuracy <= 1 and res.clean_part_accuracy is not None
    assert res.accuracy_drop == pytest.approx(res.clean_accuracy - res.accuracy)


def test_partial_protection_needs_the_originals(folders):
    with pytest.raises(DataError, match="--clean"):
        evaluate_protection(folders / "train", folders / "test", None, EvaluationConfig(recipe=TINY, image_size=16, protect_ratio=0.5), CPU)


def test_clean_extra_is_added(folders):
    cfg = EvaluationConfig(recipe=TINY, image_size=16, clean_extra=folders / "test")
    res = evaluate_protection(folders / "train", folders / "test", None, cfg, CPU)
    assert res.train_images == 30


def test_class_mismatch_is_an_error(folders, tmp_path):
    make_synthetic_folder(tmp_path / "other", num_classes=3, per_class=2, size=16)
    with pytest.raises(DataError, match="class folders differ"):
        evaluate_protection(folders / "train", tmp_path / "other", None, EvaluationConfig(recipe=TINY, image_size=16), CPU)


def test_adversarial_training_trains_on_attacked_pictures(folders):
    """Training under attack fits the training pictures less well than standard training does
    (PGD: the loss on attacked pictures; TRADES: clean loss plus the KL term)."""
    def first_epoch_loss(recipe):
        cfg = EvaluationConfig(recipe=recipe, image_size=16)
        return evaluate_protection(folders / "train", folders / "test", None, cfg, CPU).settings[0]["runs"][0]["history"][0]["train_loss"]

    standard = first_epoch_loss(replace(TINY, epochs=1))
    for loss in ("pgd", "trades"):
        attacked = first_epoch_loss(replace(TINY, epochs=1, adv_eps=8 / 255, adv_loss=loss, adv_steps=3))
        assert attacked > standard, (loss, attacked, standard)


def test_pgd_stays_in_the_ball_and_raises_the_loss():
    torch.manual_seed(0)
    model = build_victim("small-cnn", 3).eval()
    x, y = torch.rand(8, 3, 16, 16), torch.randint(0, 3, (8,))
    attack = PGD(8 / 255, steps=5)
    x_adv = attack(model, x, y)
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert ce(model(x_adv), y) > ce(model(x), y)
    loss, _ = trades_loss(model.train(), x, y, attack)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("arch", ["small-cnn", "resnet18", "mobilenetv2"])
def test_architectures_take_any_size(arch):
    model = build_victim(arch, 5).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 24, 40)).shape == (2, 5)


def test_registry_lists_the_issue_architectures():
    assert {"small-cnn", "resnet18", "resnet50", "vgg16-bn", "densenet121", "mobilenetv2", "wrn-28-10"} <= set(VICTIMS)


def test_plots_are_pngs_and_a_one_epoch_run_shows_both_points(tmp_path):
    for epochs in (3, 1):
        series = {PROTECTED_LABEL: [0.1, 0.2, 0.15][:epochs], ORIGINAL_LABEL: [0.3, 0.6, 0.7][:epochs]}
        plot_curves(tmp_path / f"c{epochs}.png", series, title="t")
        with Image.open(tmp_path / f"c{epochs}.png") as img:
            assert img.format == "PNG" and img.width > 400
            rgb = img.convert("RGB")
            colours = {rgb.getpixel((x, y)) for x in range(rgb.width) for y in range(rgb.height)}
        assert (0xd6, 0x27, 0x28) in colours and (0x1f, 0x77, 0xb4) in colours  # both lines (or points) drawn
    plot_defenses(tmp_path / "d.png", [{"defense": "none", "protected_accuracy": 0.3, "clean_accuracy": 0.5}], "t")
    with Image.open(tmp_path / "d.png") as img:
        assert img.format == "PNG"


@pytest.mark.parametrize("recipe", ["pretrained", "linear-probe"])
def test_a_trainer_who_starts_from_the_imagenet_network(tmp_path, recipe):
    """--recipe pretrained and linear-probe run end to end; the probe on frozen ImageNet features
    learns two synthetic classes almost perfectly (97.5-100% over three seeds). Fine-tuning every
    layer from so few steps is noisy on them (65-75%), so it is checked by what it trains below."""
    from unlearnable.cli.main import app
    from typer.testing import CliRunner

    make_synthetic_folder(tmp_path / "train", num_classes=2, per_class=30, size=32, seed=1)
    make_synthetic_folder(tmp_path / "test", num_classes=2, per_class=20, size=32, seed=2)
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "train"), "--test", str(tmp_path / "test"),
                                   "--recipe", recipe, "--epochs", "4", "--batch-size", "16", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["recipe"]["arch"] == RECIPES[recipe].arch and len(out["settings"][0]["runs"][0]["history"]) == 4
    if recipe == "linear-probe":  # ImageNet features tell these shapes apart: the probe alone learns them
        assert out["accuracy"] >= 0.9, out["accuracy"]


def test_fine_tuning_moves_every_layer():
    model = build_victim("efficientnet-lite0", 3)
    before = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    torch.nn.functional.cross_entropy(model(torch.rand(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    assert not torch.equal(model.state_dict()["net.conv_stem.weight"], before["net.conv_stem.weight"])
    assert not torch.equal(model.state_dict()["net.classifier.weight"], before["net.classifier.weight"])


@pytest.mark.parametrize("arch", ["efficientnet-lite0-probe", "efficientnet-lite2-probe"])
def test_the_linear_probe_trains_only_its_head(arch):
    model = build_victim(arch, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(torch.rand(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    opt.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"net.classifier.weight", "net.classifier.bias"}


def test_the_lite2_trainer_starts_from_the_larger_network():
    """--arch efficientnet-lite2: another network than the one `poison --push-steps` pushes on."""
    sizes = {arch: sum(p.numel() for p in build_victim(arch, 3).parameters()) for arch in ("efficientnet-lite0", "efficientnet-lite2")}
    assert sizes["efficientnet-lite2"] > 1.3 * sizes["efficientnet-lite0"], sizes
