import pytest
import torch

from unlearnable.budget import parse_budget
from unlearnable.io.genfile import GeneratorInfo, save_generator
from unlearnable.io.codec import encode_image
from unlearnable.io.files import atomic_write_bytes
from unlearnable.models.unet import GeneratorConfig, UNetGenerator
from unlearnable.synthetic import synthetic_images


def flat_folder(root, n_classes=3, per_class=12, size=16, seed=0):
    """Synthetic pictures with shuffled names in one flat folder; returns {name: class}."""
    x, y = synthetic_images(n_classes, per_class, size, seed)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    truth = {}
    for i, j in enumerate(order.tolist()):
        name = f"IMG_{i:04d}.png"
        atomic_write_bytes(root / name, encode_image(x[j].permute(1, 2, 0), None))
        truth[name] = f"class{y[j].item()}"
    return truth


def make_generator(path, eps="8/255", num_classes=0, class_names=None, channels=(8, 16, 32), seed=0):
    """Save a randomly initialised generator through the real file format."""
    torch.manual_seed(seed)
    budget = parse_budget(eps)
    gen = UNetGenerator(GeneratorConfig(channels=channels, num_classes=num_classes, eps=budget.value))
    # Large output weights push tanh to saturation, so tests exercise the full budget.
    with torch.no_grad():
        gen.head.weight.mul_(50)
    save_generator(path, gen.eval(), GeneratorInfo(config=gen.config, eps_text=budget.text, class_names=class_names or []))
    return path


@pytest.fixture
def gen_file(tmp_path):
    return make_generator(tmp_path / "gen.safetensors")


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Commands remember paths in ./.unlearnable.json: keep that out of the repository."""
    monkeypatch.chdir(tmp_path)


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
