import math

import pytest
import torch
from torch import nn

from unlearnable.game.batch import GameBatch
from unlearnable.game.bome import BomeSettings, bome_lambda, bome_step, inner_response
from unlearnable.game.losses import follower_payoff, leader_payoff, surrogate_loss
from unlearnable.game.minmin import batch_norm_counted_twice, minmin_step
from unlearnable.models.unet import GeneratorConfig, UNetGenerator


def test_surrogate_loss_is_bounded_by_minus_log_k_minus_1():
    torch.manual_seed(0)
    for k in (2, 3, 10):
        logits = torch.randn(500, k) * 5
        y = torch.randint(0, k, (500,))
        assert (surrogate_loss(logits, y) <= -math.log(k - 1) + 1e-5).all()
    # the bound is reached when every wrong class is equally likely and the true one has p = 0
    logits = torch.tensor([[-1e4, 0.0, 0.0, 0.0]])
    assert surrogate_loss(logits, torch.tensor([0])).item() == pytest.approx(-math.log(3), abs=1e-5)


def test_surrogate_loss_matches_definition():
    logits = torch.tensor([[2.0, 1.0, -1.0]])
    ce = [nn.functional.cross_entropy(logits, torch.tensor([k])).item() for k in range(3)]
    assert surrogate_loss(logits, torch.tensor([0])).item() == pytest.approx(-max(ce[1], ce[2]))
    assert leader_payoff(logits, torch.tensor([0])).item() == pytest.approx(max(ce[1], ce[2]))


def test_lambda_by_hand():
    g_l = [torch.tensor([1.0, 0.0])]
    g_q = [torch.tensor([1.0, 1.0])]
    # (1.5 * 2 - 1) / 2 = 1
    assert bome_lambda(g_l, g_q, 1.5).item() == pytest.approx(1.0)
    # <g_l, g_q> = 10 > rho ||g_q||^2 = 3: the barrier is inactive
    assert bome_lambda([torch.tensor([10.0, 0.0])], g_q, 1.5).item() == 0.0
    assert bome_lambda(g_l, [torch.zeros(2)], 1.5).item() == 0.0


class Linear(nn.Module):
    """A BN-free victim: exact, deterministic gradients."""

    def __init__(self, k=3, d=3 * 8 * 8):
        super().__init__()
        self.fc = nn.Linear(d, k)

    def forward(self, x):
        return self.fc(x.flatten(1))


def _setup(seed=0):
    torch.manual_seed(seed)
    gen = UNetGenerator(GeneratorConfig(channels=(4, 8), eps=8 / 255))
    victim = Linear()
    x = torch.rand(16, 3, 8, 8)
    y = torch.arange(16) % 3
    return gen, victim, x, y


def test_inner_loop_leaves_the_victim_untouched():
    gen, victim, x, y = _setup()
    before = {k: v.clone() for k, v in victim.state_dict().items()}
    follower = inner_response(victim, x, y, steps=5, lr=0.01)
    assert all(torch.equal(before[k], v) for k, v in victim.state_dict().items())
    assert not torch.equal(follower.fc.weight, victim.fc.weight)
    assert follower_payoff(follower(x), y) < follower_payoff(victim(x), y)


def test_bome_step_with_rho_zero_descends_on_j_a():
    # With rho = 0, lambda = max(-<g_l, g_q>/||g_q||^2, 0), so the theta update d satisfies
    # <d, grad J_a> = ||g_l||^2 - <g_l, g_q>^2/||g_q||^2 >= 0 (Cauchy-Schwarz): J_a goes down.
    gen, victim, x, y = _setup()
    j_a = leader_payoff(victim(x), y).item()
    gen_opt = torch.optim.SGD(gen.parameters(), lr=0.1)
    vic_opt = torch.optim.SGD(victim.parameters(), lr=1e-3)
    stats = bome_step(GameBatch(gen, victim, x, y, gen_opt, vic_opt), BomeSettings(inner_steps=3, inner_lr=0.01, rho=0.0))
    assert stats["J_a"] == pytest.approx(j_a, rel=1e-5)
    assert leader_payoff(victim(x), y).item() < j_a


def test_bome_step_decreases_q_and_moves_the_generator():
    gen, victim, x, y = _setup(1)
    settings = BomeSettings(inner_steps=5, inner_lr=0.05, rho=1.5)
    gen.eval()  # BN statistics fixed, so q is the same function before and after
    with torch.no_grad():
        delta = gen(x)
    follower = inner_response(victim, (x + delta).clamp(0, 1), y, settings.inner_steps, settings.inner_lr)

    def q_value():
        with torch.no_grad():
            xp = (x + gen(x)).clamp(0, 1)
            return (follower_payoff(victim(xp), y) - follower_payoff(follower(xp), y)).item()

    q0 = q_value()
    w0 = [p.clone() for p in gen.parameters()]
    gen_opt = torch.optim.SGD(gen.parameters(), lr=1e-3)
    vic_opt = torch.optim.SGD(victim.parameters(), lr=1e-3)
    stats = bome_step(GameBatch(gen, victim, x, y, gen_opt, vic_opt), settings)
    assert stats["q"] == pytest.approx(q0, rel=1e-4) and q0 > 0
    assert stats["lambda"] > 0
    assert q_value() < q0
    assert any(not torch.equal(a, b) for a, b in zip(w0, gen.parameters()))
    grads_finite = all(torch.isfinite(p).all() for p in gen.parameters())
    assert grads_finite


def _two_forward_minmin_step(gen, victim, x, y, gen_opt, vic_opt):
    """The min-min step as it was written before it ran the generator once: the reference."""
    with torch.no_grad():
        delta = gen(x, y)
    vic_opt.zero_grad(set_to_none=True)
    follower_payoff(victim((x + delta).clamp(0, 1)), y).backward()
    vic_opt.step()
    gen_opt.zero_grad(set_to_none=True)
    follower_payoff(victim((x + gen(x, y)).clamp(0, 1)), y).backward()
    vic_opt.zero_grad(set_to_none=True)
    gen_opt.step()


def test_minmin_step_runs_the_generator_once_and_takes_the_two_forward_step():
    runs = {}
    for name in ("reference", "one forward"):
        torch.manual_seed(0)
        gen = UNetGenerator(GeneratorConfig(channels=(4, 8), num_classes=3, eps=8 / 255))
        victim = Linear()
        gen_opt = torch.optim.Adam(gen.parameters(), 1e-3)
        vic_opt = torch.optim.SGD(victim.parameters(), 0.01, momentum=0.9)
        calls = []
        gen.register_forward_hook(lambda *_: calls.append(1))
        torch.manual_seed(1)
        for _ in range(4):
            x, y = torch.rand(16, 3, 8, 8), torch.randint(0, 3, (16,))
            if name == "reference":
                _two_forward_minmin_step(gen, victim, x, y, gen_opt, vic_opt)
            else:
                minmin_step(GameBatch(gen, victim, x, y, gen_opt, vic_opt, label_aware=True))
        runs[name] = ({**gen.state_dict(), **{"victim." + k: v for k, v in victim.state_dict().items()}}, len(calls))
    (ref, ref_calls), (new, new_calls) = runs["reference"], runs["one forward"]
    assert (ref_calls, new_calls) == (8, 4)
    moved = 0
    for k, v in ref.items():
        if k.endswith(("running_mean", "running_var")):  # two updates folded into one: equal to rounding
            assert torch.allclose(v, new[k], rtol=1e-5, atol=1e-6), k
            moved += not torch.allclose(v, torch.zeros_like(v) if k.endswith("mean") else torch.ones_like(v))
        else:  # weights, and the batch count: exactly as before
            assert torch.equal(v, new[k]), k
    assert moved > 0  # the statistics did move, so the comparison means something


def test_batch_norm_counted_twice_restores_the_momentum():
    gen = UNetGenerator(GeneratorConfig(channels=(4, 8), eps=8 / 255))
    norms = [m for m in gen.modules() if isinstance(m, nn.BatchNorm2d)]
    with batch_norm_counted_twice(gen):
        assert all(m.momentum == pytest.approx(0.19) for m in norms)
    assert all(m.momentum == 0.1 for m in norms)
