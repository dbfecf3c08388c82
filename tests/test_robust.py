"""Each differentiable transformation of `--robust` against the real operation it stands for."""

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from unlearnable import robust
from unlearnable.errors import ConfigError


def _pictures(n=8, s=32):
    """Smooth gradients with mild noise, quantised to 8 bits, like small photographs."""
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, s), torch.linspace(0, 1, s), indexing="ij")
    out = []
    for _ in range(n):
        a, b, c = torch.rand(3, generator=g).tolist()
        img = torch.stack([a * xx + (1 - a) * yy, (b * yy + c * xx) / 2 + 0.25, xx * yy * c + 0.2 * a])
        out.append((img + 0.03 * torch.randn(3, s, s, generator=g)).clamp(0, 1))
    return (torch.stack(out) * 255).round() / 255


def _pil(t):
    return Image.fromarray((t.permute(1, 2, 0) * 255).round().byte().numpy())


def _tensor(img):
    return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).float() / 255


def _pillow_jpeg(t, quality):
    buf = io.BytesIO()
    _pil(t).save(buf, format="JPEG", quality=quality)
    return _tensor(Image.open(io.BytesIO(buf.getvalue())))


@pytest.mark.parametrize("quality", [10, 50, 90])
def test_jpeg_approximation_is_close_to_pillows_encoder(quality):
    x = _pictures()
    ref = torch.stack([_pillow_jpeg(t, quality) for t in x])
    ours = robust.jpeg(x, torch.full((len(x),), float(quality)))
    error = (ours - ref).abs().mean() * 255
    # measured 2.0 / 1.2 / 1.3 levels; JPEG itself moves these pictures 9.1 / 6.3 / 5.8 levels
    assert error < 2.5
    assert error < 0.35 * (ref - x).abs().mean() * 255


def test_grayscale_is_pillows_L_mode():
    x = _pictures()
    ref = torch.stack([_tensor(_pil(t).convert("L")) for t in x])
    assert (robust.grayscale(x) - ref).abs().max() * 255 <= 0.51  # Pillow rounds to whole levels


@pytest.mark.parametrize("factor", [0.5, 0.25])
def test_down_up_is_pillows_bilinear_resize(factor):
    x = _pictures()
    small = int(32 * factor)
    ref = torch.stack([_tensor(_pil(t).resize((small, small), Image.BILINEAR).resize((32, 32), Image.BILINEAR)) for t in x])
    diff = (robust.down_up(x, factor) - ref).abs() * 255
    assert diff.mean() < 0.6 and diff.max() < 2  # measured 0.44 / 0.35 mean, 1.6 max


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.5])
def test_blur_is_pillows_gaussian_blur(sigma):
    x = _pictures()
    ref = torch.stack([_tensor(_pil(t).filter(ImageFilter.GaussianBlur(sigma))) for t in x])
    diff = (robust.blur(x, sigma) - ref).abs() * 255
    assert diff.mean() < 1.0 and diff.max() < 5  # Pillow approximates the Gaussian with box blurs


def test_bits_is_exact_quantisation_with_a_straight_through_gradient():
    x = _pictures().requires_grad_()
    out = robust.bits(x, 3)
    ref = (x.detach() * 7).round() / 7
    assert torch.equal(out.detach(), ref)
    out.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_every_transformation_passes_gradients_to_the_perturbation():
    x = _pictures(4)
    delta = torch.zeros_like(x, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    for name in robust.ROBUST:
        if delta.grad is not None:
            delta.grad = None
        robust._draw(name, (x + delta).clamp(0, 1), g).pow(2).sum().backward()
        assert delta.grad is not None and delta.grad.abs().sum() > 0, name


def test_trainer_transforms_mix_identity_and_each_choice():
    x = _pictures(64)
    out = robust.trainer_transforms(("grayscale",), torch.Generator().manual_seed(0))(x)
    gray = (out[:, 0] == out[:, 1]).flatten(1).all(1)
    assert 10 < gray.sum() < 54  # about half of the pictures, the rest untouched
    assert torch.equal(out[~gray], x[~gray])


def test_parse_robust():
    assert robust.parse_robust("none") == () and robust.parse_robust(None) == ()
    assert robust.parse_robust("all") == robust.ROBUST.names() == ("jpeg", "grayscale", "downscale", "gaussian", "bit-depth")
    assert robust.parse_robust("bits,resize,blur") == ("downscale", "gaussian", "bit-depth")  # the names before 2026-12-02
    assert robust.parse_robust("grayscale, jpeg") == ("jpeg", "grayscale")
    with pytest.raises(ConfigError, match="unknown transformation 'sepia'"):
        robust.parse_robust("jpeg,sepia")


def test_a_luma_perturbation_survives_grayscale_whole():
    """--luma: one pattern for R, G and B, so a grey conversion (weights summing to 1) keeps all of it."""
    from unlearnable.models.unet import GeneratorConfig, UNetGenerator

    gen = UNetGenerator(GeneratorConfig(channels=(8, 16), luma=True)).eval()
    x = _pictures(4, 16) * 0.9 + 0.05  # away from 0 and 1: no clipping
    with torch.no_grad():
        delta = gen(x)
        kept = robust.grayscale(x + delta) - robust.grayscale(x)
    assert delta.abs().max() <= 8 / 255 + 1e-6 and delta.abs().max() > 0
    assert torch.allclose(kept[:, 0], delta[:, 0], atol=1e-5)
    assert GeneratorConfig.from_dict(GeneratorConfig().to_dict()).luma is False  # files without the field
    assert "luma" not in GeneratorConfig().to_dict() and GeneratorConfig(luma=True).to_dict()["luma"] is True
    with pytest.raises(ValueError, match="luma"):
        GeneratorConfig.from_dict({**GeneratorConfig().to_dict(), "luma": "yes"})


def _jpeg_kept(x, delta, quality=10):
    """Share of the perturbation's energy left after Pillow's JPEG of the perturbed and plain pictures."""
    kept = []
    for a, d in zip(x, delta):
        plain, moved = (_pillow_jpeg(t, quality) for t in (a, (a + d).clamp(0, 1)))
        kept.append(((moved - plain) * d).sum() / (d * d).sum())
    return float(torch.stack(kept).mean())


def test_a_block_pattern_is_constant_per_cell_and_survives_jpeg_better():
    """--block 8: one value per 8 x 8 cell, within the budget; Pillow's JPEG-10 keeps more of it than of
    a pixel-wise pattern of the same budget."""
    from unlearnable.models.unet import GeneratorConfig, UNetGenerator

    torch.manual_seed(0)
    x = _pictures(6, 32) * 0.9 + 0.05
    gen = UNetGenerator(GeneratorConfig(channels=(8, 16), block=8, luma=True)).eval()
    with torch.no_grad():
        gen.head.bias.fill_(3.0)  # a strong pattern, as a trained generator writes, not a faint one
        delta = gen(x)
    cells = delta.unfold(2, 8, 8).unfold(3, 8, 8)  # (N, 3, 4, 4, 8, 8)
    assert torch.allclose(cells, cells[..., :1, :1].expand_as(cells), atol=1e-7)
    assert delta.abs().max() <= 8 / 255 + 1e-6 and delta.abs().max() > 6 / 255
    signs = torch.sign(torch.randn(delta.shape[0], 1, 32, 32)).expand(-1, 3, -1, -1) * 8 / 255
    blocks = torch.sign(torch.randn(delta.shape[0], 1, 4, 4)).repeat_interleave(8, 2).repeat_interleave(8, 3)
    blocks = blocks.expand(-1, 3, -1, -1) * 8 / 255
    assert _jpeg_kept(x, blocks) > 0.8 and _jpeg_kept(x, signs) < 0.2  # measured 0.99 and 0.04
    odd = UNetGenerator(GeneratorConfig(channels=(8, 16), block=8)).eval()(torch.rand(2, 3, 20, 27))
    assert odd.shape == (2, 3, 20, 27)  # partial cells at the edges
    assert "block" not in GeneratorConfig().to_dict() and GeneratorConfig(block=8).to_dict()["block"] == 8
    with pytest.raises(ValueError, match="block"):
        GeneratorConfig.from_dict({**GeneratorConfig().to_dict(), "block": 0})
