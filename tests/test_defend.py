from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from unlearnable.cli.main import app
from unlearnable.defend import DefendConfig, run_defenses
from unlearnable.defenses import DEFENSES, build_defenses
from unlearnable.errors import UnlearnableError
from unlearnable.io.codec import decode_image
from unlearnable.synthetic import make_synthetic_folder, synthetic_images
from unlearnable.training.victim import RECIPES

X, _ = synthetic_images(2, 4, 16, seed=3)


def _one(name, **kw):
    return DEFENSES[name](**kw)


def test_jpeg_changes_and_decodes():
    out = _one("jpeg", quality=10).purify(X)
    assert out.shape == X.shape and out.dtype == torch.uint8 and not torch.equal(out, X)
    assert (out.float() - X.float()).abs().mean() < 40


def test_grayscale_has_equal_channels():
    out = _one("grayscale").purify(X)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])


def test_bit_depth_keeps_four_levels():
    assert len(_one("bit-depth").purify(X).unique()) <= 4


@pytest.mark.parametrize("name", ["median", "mean", "gaussian", "downscale", "iss"])
def test_filters_preserve_shape_and_range(name):
    out = _one(name).purify(X)
    assert out.shape == X.shape and out.dtype == torch.uint8 and not torch.equal(out, X)


def test_median_removes_an_isolated_spike():
    img = torch.full((1, 3, 5, 5), 100, dtype=torch.uint8)
    img[0, :, 2, 2] = 255
    assert _one("median").purify(img).unique().tolist() == [100]


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_mixed_labels_sum_to_one(name):
    x = torch.rand(8, 3, 16, 16)
    y = torch.nn.functional.one_hot(torch.arange(8) % 3, 3).float()
    xm, ym = _one(name).batch(x, y, torch.Generator().manual_seed(0))
    assert xm.shape == x.shape and torch.allclose(ym.sum(1), torch.ones(8))


def test_cutout_erases_a_square():
    x = torch.ones(4, 3, 16, 16)
    xc, _ = _one("cutout").batch(x, torch.eye(4), torch.Generator().manual_seed(0))
    assert ((xc == 0).float().mean(dim=(1, 2, 3)) > 0).all()


def test_bad_defense_name_lists_valid_ones():
    with pytest.raises(UnlearnableError, match="unknown defense 'jpg'.*grayscale"):
        build_defenses(["jpg"])
    assert len(build_defenses(["jpeg"], sweep=True)) == 5
    assert len(build_defenses(["all"])) == len(DEFENSES)


def test_matrix_end_to_end(tmp_path):
    make_synthetic_folder(tmp_path / "train", num_classes=2, per_class=8, size=16, seed=1)
    make_synthetic_folder(tmp_path / "test", num_classes=2, per_class=4, size=16, seed=2)
    defenses = build_defenses(["all"], adv_eps=4 / 255, adv_text="4/255")
    cfg = DefendConfig(recipe=replace(RECIPES["quick"], epochs=1, batch_size=8, adv_steps=2), image_size=16, export=tmp_path / "exp")
    res = run_defenses(tmp_path / "train", tmp_path / "test", tmp_path / "train", defenses, cfg, torch.device("cpu"))
    assert [r.defense for r in res.rows] == [d.name for d in defenses]
    for row in res.rows:
        assert 0 <= row.protected_accuracy <= 1 and row.protection_kept == pytest.approx(row.clean_accuracy - row.protected_accuracy)
    exported = decode_image(tmp_path / "exp" / "grayscale" / "class0" / "00000.png").rgb
    assert torch.equal(exported[..., 0], exported[..., 1])


def test_cli_bad_defense_is_one_line(tmp_path):
    make_synthetic_folder(tmp_path / "t", num_classes=2, per_class=2, size=8)
    res = CliRunner().invoke(app, ["defend", str(tmp_path / "t"), "--test", str(tmp_path / "t"), "--defense", "nope"])
    assert res.exit_code == 2 and "unknown defense 'nope'" in res.output and "Traceback" not in res.output


def test_a_blur_strips_a_checkerboard_protection_end_to_end(tmp_path):
    """A protection made of a one-pixel checkerboard whose colour is the class really lowers
    accuracy, and `defend` shows the 3x3 Gaussian filter stripping it: its 1-2-1 kernel sums a
    checkerboard to zero (reflect padding included), so the blurred protected pictures are the
    blurred originals but for rounding, and the matrix measures what a defense does, not just
    that it runs."""
    from unlearnable.synthetic import write_folder

    from .conftest import gratings

    names = [f"class{c}" for c in range(8)]
    x, y = gratings(40, seed=0)
    angle = 2 * torch.pi * y.float() / 8
    hue = torch.stack([torch.cos(angle), torch.sin(angle), -torch.cos(angle) - torch.sin(angle)], 1)
    hue = (hue / hue.abs().amax(1, keepdim=True) * 8).round()  # whole levels, at most 8
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2 - 1
    protected = (x.float() + hue[:, :, None, None] * checker).clamp(0, 255).to(torch.uint8)
    gaussian = build_defenses(["gaussian"])[0]
    moved = (gaussian.purify(protected).int() - gaussian.purify(x).int()).abs()
    # the same pictures but for rounding to whole levels and a few clamped pixels (measured: 1.1%, by 2 at most)
    assert moved.max() <= 2 and (moved > 0).float().mean() < 0.02
    write_folder(tmp_path / "clean", x, y, names)
    write_folder(tmp_path / "prot", protected, y, names)
    write_folder(tmp_path / "test", *gratings(20, seed=1), names)
    config = DefendConfig(recipe=replace(RECIPES["quick"], epochs=10), image_size=16)
    result = run_defenses(tmp_path / "prot", tmp_path / "test", tmp_path / "clean",
                          build_defenses(["none", "gaussian"]), config, torch.device("cpu"))
    none, blur = result.rows
    assert none.protection_kept >= 0.15, (none.protected_accuracy, none.clean_accuracy)
    # chance is 12.5%: the blurred originals still teach something, and the protection no longer
    # hides it. The two blurred trainings' inputs differ by that rounding alone, which ten epochs
    # amplify to a few of the 160 test pictures (1.25 points at 2 threads, 5.0 at 1), so the
    # bound is a quarter of the protection without the blur (about 35 points)
    assert blur.clean_accuracy >= 0.18
    assert abs(blur.protection_kept) <= none.protection_kept / 4, (blur.protected_accuracy, blur.clean_accuracy,
                                                                   none.protection_kept)
