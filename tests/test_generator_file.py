import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from unlearnable.errors import GeneratorFileError
from unlearnable.io.genfile import FORMAT_VERSION, GENERATOR_FORMAT, PATTERN_FORMAT, load_generator, read_info
from unlearnable.models.unet import GENERATOR_PRESETS, GeneratorConfig, UNetGenerator

from .conftest import make_generator


def test_round_trip_rebuilds_the_same_model(tmp_path):
    path = make_generator(tmp_path / "g.safetensors", eps="16/255", num_classes=3, class_names=["a", "b", "c"])
    gen, info = load_generator(path)
    assert info.eps_text == "16/255" and info.config.eps == pytest.approx(16 / 255)
    assert info.class_names == ["a", "b", "c"] and info.format_version == GENERATOR_FORMAT == 1
    x = torch.rand(2, 3, 20, 28)
    y = torch.tensor([0, 2])
    with torch.no_grad():
        gen2, _ = load_generator(path)
        assert torch.equal(gen(x, y), gen2(x, y))


def _rewrite(path, tensors=None, meta_update=None, drop=()):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata())
    t = load_file(str(path)) if tensors is None else tensors
    meta.update(meta_update or {})
    for k in drop:
        meta.pop(k)
    save_file(t, str(path), metadata=meta)


def test_newer_format_is_refused(gen_file):
    _rewrite(gen_file, meta_update={"unlearnable.format_version": str(FORMAT_VERSION + 1)})
    with pytest.raises(GeneratorFileError, match="newer"):
        load_generator(gen_file)


def test_tampered_shapes_are_refused(gen_file):
    t = load_file(str(gen_file))
    t["head.weight"] = torch.zeros(3, 99, 1, 1)
    _rewrite(gen_file, tensors=t)
    with pytest.raises(GeneratorFileError, match="tampered"):
        load_generator(gen_file)


def test_foreign_and_truncated_files(tmp_path, gen_file):
    foreign = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(GeneratorFileError, match="not an unlearnable protection file"):
        read_info(foreign)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(gen_file.read_bytes()[:300])
    with pytest.raises(GeneratorFileError, match="truncated|not a readable"):
        load_generator(cut)
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"\x80\x04\x95")
    with pytest.raises(GeneratorFileError):
        load_generator(pickle)


def test_unet_any_size_and_bound():
    gen = UNetGenerator(GeneratorConfig(channels=(8, 16, 32), eps=8 / 255)).eval()
    with torch.no_grad():
        gen.head.weight.mul_(100)
        for h, w in ((32, 32), (17, 45), (3, 5), (64, 9)):
            out = gen(torch.rand(2, 3, h, w))
            assert out.shape == (2, 3, h, w)
            assert out.abs().max() <= 8 / 255 + 1e-7


def test_presets_sizes():
    sizes = {k: sum(p.numel() for p in UNetGenerator(GeneratorConfig(channels=c)).parameters())
             for k, c in GENERATOR_PRESETS.items() if c}
    assert 0.4e6 < sizes["small"] < 0.6e6
    assert 7.5e6 < sizes["paper"] < 8.0e6


@pytest.mark.parametrize("config_update, msg", [
    ({"channels": [8]}, "channels"),
    ({"channels": [8, "x"]}, "channels"),
    ({"channels": [8, 10**9]}, "channels"),
    ({"eps": "8/255"}, "eps"),
    ({"eps": 3.0}, "eps"),
    ({"num_classes": -1}, "num_classes"),
    ({"in_channels": 4}, "in_channels"),
    ({"patterns": -1}, "patterns"),
    ({"patterns": 32, "num_classes": 0}, "patterns needs num_classes"),
])
def test_tampered_metadata_is_refused_in_one_line(gen_file, config_update, msg):
    from safetensors import safe_open

    with safe_open(str(gen_file), framework="pt") as fh:
        config = json.loads(fh.metadata()["unlearnable.config"])
    _rewrite(gen_file, meta_update={"unlearnable.config": json.dumps({**config, **config_update})})
    with pytest.raises(GeneratorFileError, match=msg):
        load_generator(gen_file)


def test_tampered_side_fields_are_refused(gen_file):
    for update, msg in (({"unlearnable.class_names": '[1, 2]'}, "class_names"),
                        ({"unlearnable.image_size": "1e9"}, "image_size|damaged"),
                        ({"unlearnable.training": "[]"}, "training")):
        _rewrite(gen_file, meta_update=update)
        with pytest.raises(GeneratorFileError, match=msg):
            load_generator(gen_file)
        _rewrite(gen_file, meta_update={"unlearnable.class_names": "[]", "unlearnable.image_size": "32",
                                        "unlearnable.training": "{}"})


def test_pattern_generator_plants_one_bounded_pattern_per_key_and_survives_its_file(tmp_path):
    from unlearnable.io.genfile import GeneratorInfo, save_generator
    from unlearnable.models.unet import KeyPatternGenerator

    config = GeneratorConfig(num_classes=3, eps=8 / 255, patterns=8)
    assert GeneratorConfig.from_dict(config.to_dict()) == config and "patterns" not in GeneratorConfig().to_dict()
    torch.manual_seed(0)
    gen = KeyPatternGenerator(config).eval()
    with torch.no_grad():
        gen.patterns.mul_(1000)  # far past the bound before tanh
        x = torch.rand(4, 3, 8, 8)
        out = gen(x, torch.tensor([0, 0, 1, 2]))
        assert out.abs().max() <= 8 / 255 + 1e-7 and out.abs().max() > 7.9 / 255
        assert torch.equal(out[0], out[1]) and not torch.equal(out[1], out[2])  # the key, not the picture
        assert torch.equal(gen(torch.rand(1, 3, 8, 8), torch.tensor([2])), out[3:])
        big = gen(torch.rand(1, 3, 20, 30), torch.tensor([1]))  # another size: the pattern resized
        assert big.shape == (1, 3, 20, 30) and big.abs().max() <= 8 / 255 + 1e-7
    path = tmp_path / "p.safetensors"
    save_generator(path, gen, GeneratorInfo(config=config, eps_text="8/255", class_names=["a", "b", "c"]))
    again, info = load_generator(path)
    assert isinstance(again, KeyPatternGenerator) and info.config.patterns == 8
    assert info.format_version == PATTERN_FORMAT  # a version that knows no patterns refuses it as newer
    with torch.no_grad():
        assert torch.equal(again(x, torch.tensor([0, 0, 1, 2])), out)
