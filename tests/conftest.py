import pytest
import torch

from unlearnable.budget import parse_budget
from unlearnable.io.genfile import GeneratorInfo, save_generator
from unlearnable.io.images import atomic_write_bytes, encode_image
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
