"""GUE-AT, TGDA, REM, EM and TAP: the maths on tiny problems, then each method through the CLI."""

import json

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from unlearnable.attacks.pgd import PGD
from unlearnable.cli.main import app
from unlearnable.game.follower import follower_loss, standard_loss
from unlearnable.game.batch import GameBatch
from unlearnable.game.tgda import TgdaSettings, conjugate_gradient, tgda_round, total_derivative
from unlearnable.io.genfile import load_generator, read_info
from unlearnable.attacks.noise import NoiseSettings, defensive_noise
from unlearnable.models.unet import GeneratorConfig, UNetGenerator
from unlearnable.models.victims import build_victim
from unlearnable.synthetic import make_synthetic_folder, synthetic_images

runner = CliRunner()


def test_cg_solves_an_spd_system():
    torch.manual_seed(0)
    m = torch.randn(6, 6, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    (v,), iters = conjugate_gradient(lambda p: [a @ p[0]], [b], steps=50, tol=1e-10)
    assert torch.allclose(a @ v, b, atol=1e-8) and iters <= 7  # exact in n = 6 steps, up to round-off


def test_cg_stops_on_negative_curvature_instead_of_diverging():
    a = torch.diag(torch.tensor([1.0, -2.0]))
    (v,), _ = conjugate_gradient(lambda p: [a @ p[0]], [torch.tensor([1.0, 1.0])], steps=10, tol=1e-8)
    assert torch.isfinite(v).all() and v.abs().max() < 10


def test_total_derivative_matches_closed_form_on_a_quadratic_game():
    # follower h(w, t) = 1/2 t'At - t'Bw has best response t*(w) = A^-1 B w; leader l(t) = c't,
    # so dl(t*(w))/dw = B' A^-1 c exactly.
    torch.manual_seed(1)
    m = torch.randn(4, 4)
    a, bm, c = m @ m.T + torch.eye(4), torch.randn(4, 3), torch.randn(4)
    w = torch.randn(3, requires_grad=True)
    t = torch.randn(4, requires_grad=True)
    h = 0.5 * t @ a @ t - t @ bm @ w
    (d_w,), _ = total_derivative(h, c @ t, [w], [t], TgdaSettings(cg_steps=20, cg_tol=1e-10, damping=0.0))
    assert torch.allclose(d_w, bm.T @ torch.linalg.solve(a, c), atol=1e-4)


@pytest.fixture(scope="module")
def trained():
    """A small CNN fitted to 36 synthetic 16px pictures of 3 classes (a fixed source model)."""
    torch.manual_seed(0)
    x, y = synthetic_images(3, 12, 16)
    x = x.float() / 255
    model = build_victim("small-cnn", 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval(), x, y


def test_rem_noise_lowers_the_adversarial_loss_and_stays_in_budget(trained):
    model, x, y = trained
    eps, rho_a = 8 / 255, 4 / 255
    rem = NoiseSettings("rem", eps, steps=6, adv_eps=rho_a, adv_steps=4, eot=1)
    delta = defensive_noise(model, x, y, rem, torch.Generator().manual_seed(0))
    assert delta.abs().max() <= eps + 1e-6 and ((x + delta) >= 0).all() and ((x + delta) <= 1).all()

    def adversarial_loss(inputs):
        torch.manual_seed(0)
        x_adv = PGD(rho_a, steps=5, step_size=rho_a / 4)(model, inputs, y)
        return F.cross_entropy(model(x_adv), y).item()

    assert adversarial_loss(x + delta) < 0.7 * adversarial_loss(x)
    assert all(p.requires_grad for p in model.parameters()) and not model.training  # model left as found


def test_em_noise_lowers_the_standard_loss(trained):
    model, x, y = trained
    delta = defensive_noise(model, x, y, NoiseSettings("em", 8 / 255, steps=5))
    assert F.cross_entropy(model(x + delta), y) < F.cross_entropy(model(x), y)


def test_tap_moves_predictions_toward_the_target_label(trained):
    model, x, y = trained
    target = (y + 1) % 3
    tap = NoiseSettings("tap", 8 / 255, steps=20, step_size=(8 / 255) / 10, target_shift=1)
    delta = defensive_noise(model, x, y, tap)
    hit = lambda inp: (model(inp).argmax(1) == target).float().mean().item()  # noqa: E731
    assert hit(x + delta) > hit(x) + 0.3
    assert delta.abs().max() <= 8 / 255 + 1e-6


def test_trades_follower_loss_is_at_least_cross_entropy(trained):
    model, x, y = trained
    torch.manual_seed(0)
    trades = follower_loss(4 / 255)(model, x, y)
    assert trades.item() >= standard_loss(model, x, y).item() - 1e-6
    assert follower_loss(0.0) is standard_loss


def test_tgda_round_moves_the_generator_and_trains_the_victim():
    torch.manual_seed(0)
    x, y = synthetic_images(3, 8, 16)
    x = x.float() / 255
    gen = UNetGenerator(GeneratorConfig(channels=(4, 8), eps=8 / 255, num_classes=3))
    victim = build_victim("small-cnn", 3)
    w0 = [p.clone() for p in gen.parameters()]
    before = standard_loss(victim, (x + gen(x, y)).clamp(0, 1), y).item()
    settings = TgdaSettings(leader_steps=1, follower_steps=5, cg_steps=5)
    stats = tgda_round(GameBatch(gen, victim, x, y, torch.optim.Adam(gen.parameters(), 1e-3),
                                 torch.optim.SGD(victim.parameters(), lr=0.05), label_aware=True), settings)
    assert all(torch.isfinite(p).all() for p in gen.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(w0, gen.parameters()))
    assert stats["J_c"] < before and 1 <= stats["cg"] <= 5


@pytest.mark.parametrize("method", ["rem", "em", "tap"])
def test_every_method_protects_new_pictures_within_budget(tmp_path, method):
    make_synthetic_folder(tmp_path / "data", num_classes=3, per_class=8, size=16)
    make_synthetic_folder(tmp_path / "new", num_classes=3, per_class=2, size=16, seed=1)
    gen = tmp_path / f"{method}.safetensors"
    iterations = ["--iterations", "2"] if method != "tap" else []
    res = runner.invoke(app, ["train-generator", str(tmp_path / "data"), "--method", method, *iterations,
                              "--image-size", "16", "--out", str(gen), "--json"])
    assert res.exit_code == 0, res.output
    info = read_info(gen)
    assert info.method == method and info.eps == pytest.approx(8 / 255) and info.class_names == ["class0", "class1", "class2"]
    res = runner.invoke(app, ["poison", str(tmp_path / "new"), "--gen", str(gen), "--out", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["protected"] == 6 and 0 < data["max_change_levels"] <= 8
    res = runner.invoke(app, ["poison", str(tmp_path / "new"), "--gen", str(gen), "--out", str(tmp_path / "again")])
    assert res.exit_code == 0, res.output
    for f in (tmp_path / "out").rglob("*.png"):  # the same noise for the same picture, run after run
        assert f.read_bytes() == (tmp_path / "again" / f.relative_to(tmp_path / "out")).read_bytes(), f.name


def test_a_flag_the_method_does_not_read_is_refused(tmp_path):
    make_synthetic_folder(tmp_path / "data", num_classes=2, per_class=2, size=16)
    for method, flags, named in (("rem", ["--solver", "tgda"], "--solver"), ("em", ["--inner-steps", "3", "--keys", "folders"],
                                 "--inner-steps, --keys"), ("tap", ["--iterations", "5"], "--iterations"),
                                 ("em", ["--adv-eps", "4/255"], "--adv-eps")):
        res = runner.invoke(app, ["train-generator", str(tmp_path / "data"), "--method", method, *flags],
                            env={"COLUMNS": "250"})
        assert res.exit_code == 2 and f"--method {method} does not use {named}" in res.output, res.output


def test_epochs_set_how_long_rem_em_and_tap_train(tmp_path):
    make_synthetic_folder(tmp_path / "data", num_classes=2, per_class=5, size=16)  # 10 pictures: 1 batch of 128
    for method, key, expected in (("rem", "iterations", 3), ("em", "iterations", 3), ("tap", "epochs", 3)):
        out = tmp_path / f"{method}.safetensors"
        res = runner.invoke(app, ["train-generator", str(tmp_path / "data"), "--method", method, "--epochs", "3",
                                  "--image-size", "16", "--out", str(out), "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)[key] == expected
    res = runner.invoke(app, ["train-generator", str(tmp_path / "data"), "--method", "rem", "--epochs", "3",
                              "--iterations", "5", "--json"])
    assert res.exit_code == 2 and "not both" in json.loads(res.stdout)["error"]["message"]
    res = runner.invoke(app, ["train-generator", str(tmp_path / "data"), "--method", "em", "--epochs", "0", "--json"])
    assert res.exit_code == 2 and "at least 1" in json.loads(res.stdout)["error"]["message"]


def test_gue_at_and_tgda_are_recorded_in_the_file(tmp_path):
    make_synthetic_folder(tmp_path / "data", num_classes=2, per_class=8, size=16)
    for extra, method, solver in ((["--adv-eps", "4/255"], "gue-at", "bome"), (["--solver", "tgda"], "gue", "tgda")):
        out = tmp_path / f"{solver}-{method}.safetensors"
        res = runner.invoke(app, ["train-generator", str(tmp_path / "data"), "--warmup-epochs", "0", "--epochs", "1",
                                  "--image-size", "16", "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
        info = read_info(out)
        assert (info.method, info.solver) == (method, solver)
    assert read_info(tmp_path / "bome-gue-at.safetensors").training["adv_eps_text"] == "4/255"


def test_poison_refuses_a_method_it_cannot_run(tmp_path):
    from safetensors.torch import save_file

    make_synthetic_folder(tmp_path / "new", num_classes=2, per_class=1, size=16)
    bad = tmp_path / "ntga.safetensors"
    save_file({"w": torch.zeros(1)}, str(bad), metadata={
        "unlearnable.format_version": "2", "unlearnable.method": "ntga", "unlearnable.source": "{}"})
    res = runner.invoke(app, ["poison", str(tmp_path / "new"), "--gen", str(bad)])
    assert res.exit_code == 1
    assert "method 'ntga'" in res.output and "upgrade" in res.output and "Traceback" not in res.output


def test_unknown_method_and_solver_are_usage_errors(tmp_path):
    make_synthetic_folder(tmp_path / "data", num_classes=2, per_class=2, size=16)
    res = runner.invoke(app, ["train-generator", str(tmp_path / "data"), "--method", "ntga"])
    assert res.exit_code == 2 and "rem" in res.output
    res = runner.invoke(app, ["train-generator", str(tmp_path / "data"), "--solver", "newton"])
    assert res.exit_code == 2 and "tgda" in res.output


def test_two_way_switches_are_kept_either_way(tmp_path):
    """--image-only (False) is a choice as much as --label-aware; it used to be dropped as 'unset'."""
    make_synthetic_folder(tmp_path / "data", num_classes=2, per_class=8, size=16)
    out = tmp_path / "g.safetensors"
    res = runner.invoke(app, ["train-generator", str(tmp_path / "data"), "--warmup-epochs", "1", "--epochs", "0",
                              "--image-size", "16", "--image-only", "--luma", "--out", str(out)])
    assert res.exit_code == 0, res.output
    info = read_info(out)
    assert info.training["label_aware"] is False and info.training["luma"] is True
    model, _ = load_generator(out)
    delta = model(torch.rand(2, 3, 16, 16))
    assert not model.config.num_classes and torch.equal(delta[:, 0], delta[:, 1]) and torch.equal(delta[:, 1], delta[:, 2])
