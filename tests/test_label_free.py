"""Protection without labels: keys found by clustering, flat and mixed folders, --labels."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open
from typer.testing import CliRunner

from unlearnable.cli.main import app
from unlearnable.data import read_label_file
from unlearnable.errors import DataError, GeneratorFileError
from unlearnable.io.genfile import PUSH_FORMAT, load_generator
from unlearnable.io.codec import encode_image
from unlearnable.io.files import atomic_write_bytes
from unlearnable.models.keys import ClusterKeys, KeyConfig
from unlearnable.synthetic import synthetic_images
from unlearnable.game.bome import BomeSettings
from unlearnable.training.generator import PRESETS, train_generator

from .conftest import flat_folder

CPU = torch.device("cpu")
runner = CliRunner()


def _colour_groups(n_per=20, size=16, seed=0):
    """Three groups of pictures with clearly different mean colours."""
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
    x = base.repeat_interleave(n_per, 0)[:, :, None, None] + 0.05 * torch.randn(3 * n_per, 3, size, size, generator=g)
    return x.clamp(0, 1), torch.arange(3).repeat_interleave(n_per)


def test_kmeans_keys_find_the_groups_and_ignore_the_perturbation():
    x, y = _colour_groups()
    keys = ClusterKeys.fit_kmeans(x, KeyConfig(clusters=3, image_size=16), seed=0)
    k = keys(x)
    for group in range(3):  # every group is one cluster, and different groups differ
        assert k[y == group].unique().numel() == 1
    assert k.unique().numel() == 3
    again = ClusterKeys.fit_kmeans(x, KeyConfig(clusters=3, image_size=16), seed=0)
    assert torch.equal(again.centres, keys.centres)
    shifted = (x + (8 / 255) * torch.sign(torch.randn_like(x))).clamp(0, 1)
    assert torch.equal(keys(shifted), k)  # a protected picture keeps its key
    big = torch.nn.functional.interpolate(x[:4], size=(64, 96), mode="bilinear")
    assert torch.equal(keys(big), k[:4])  # any size: fitted like the training pictures


def _tiny(**kw):
    return replace(PRESETS["cpu"], warmup_epochs=1, epochs=1, batch_size=16, image_size=16, bome=BomeSettings(inner_steps=1),
                   min_steps=0, **kw)


def test_flat_folder_trains_poisons_and_evaluates_with_the_trainers_labels(tmp_path):
    truth = flat_folder(tmp_path / "photos")
    (tmp_path / "photos" / "2024" / "trip").mkdir(parents=True)  # a mixed layout: some nested
    (tmp_path / "photos" / "IMG_0000.png").rename(tmp_path / "photos" / "2024" / "trip" / "IMG_0000.png")
    truth["2024/trip/IMG_0000.png"] = truth.pop("IMG_0000.png")
    gen = tmp_path / "gen.safetensors"
    result = train_generator(tmp_path / "photos", gen, _tiny(clusters=3), CPU)
    assert result.images == 36 and result.keys == "3 clusters (colour features)"
    model, info = load_generator(gen)
    assert info.format_version == PUSH_FORMAT and info.config.keys.clusters == 3 == info.config.num_classes
    assert not info.needs_labels and info.class_names == []

    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--gen", str(gen), "--out", str(tmp_path / "prot"),
                              "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["protected"] == 36 and data["skipped"] == [] and data["max_change_levels"] <= 8
    assert (tmp_path / "prot" / "2024" / "trip" / "IMG_0000.png").exists()

    # the trainer's labels, which the tool never saw; test pictures in class folders
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "".join(f"{k},{v}\n" for k, v in truth.items()))
    x, y = synthetic_images(3, 6, 16, seed=5)
    for i, (img, c) in enumerate(zip(x, y.tolist())):
        atomic_write_bytes(tmp_path / "test" / f"class{c}" / f"{i}.png", encode_image(img.permute(1, 2, 0), None))
    res = runner.invoke(app, ["evaluate", str(tmp_path / "prot"), "--test", str(tmp_path / "test"), "--labels", str(csv),
                              "--clean", str(tmp_path / "photos"), "--epochs", "1", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["train_images"] == 36 and report["test_images"] == 18 and report["clean_accuracy"] is not None

    # no test folder given: the trainer learns from the protected 80% and is tested on the other 20%'s
    # originals, even though the --test folder above is remembered (it stands in only without --clean)
    res = runner.invoke(app, ["evaluate", str(tmp_path / "prot"), "--labels", str(csv), "--clean", str(tmp_path / "photos"),
                              "--epochs", "1", "--report", str(tmp_path / "held.json"), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert (report["train_images"], report["test_images"]) == (29, 7) and report["clean_accuracy"] is not None
    res = runner.invoke(app, ["evaluate", str(tmp_path / "prot"), "--labels", str(csv), "--epochs", "1", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["test_images"] == 18  # the remembered test folder
    (tmp_path / ".unlearnable.json").unlink()
    res = runner.invoke(app, ["evaluate", str(tmp_path / "prot"), "--labels", str(csv), "--epochs", "1"])
    assert res.exit_code == 1 and "--clean ORIGINALS" in res.output


def test_labels_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a.jpg,cat\nb.jpg\n")
    with pytest.raises(DataError, match="line 2"):
        read_label_file(bad)
    one = tmp_path / "one.csv"
    one.write_text("a.jpg,cat\nb.jpg,cat\n")
    with pytest.raises(DataError, match="fewer than 2 classes"):
        read_label_file(one)
    good = tmp_path / "good.csv"
    good.write_text("x/a.jpg,cat\nb.png,dog\n")
    assert read_label_file(good) == {"x/a": "cat", "b": "dog"}


def test_keyed_file_refuses_tampered_keys(tmp_path):
    flat_folder(tmp_path / "photos", per_class=8)
    gen = tmp_path / "gen.safetensors"
    train_generator(tmp_path / "photos", gen, _tiny(clusters=2), CPU)
    with safe_open(str(gen), framework="pt") as fh:
        meta = fh.metadata()
    tensors = load_file(str(gen))

    def rewrite(name, meta_update=None, tensor_update=None):
        path = tmp_path / name
        save_file({**tensors, **(tensor_update or {})}, str(path), metadata={**meta, **(meta_update or {})})
        return path

    config = json.loads(meta["unlearnable.config"])
    for keys, msg in (({**config["keys"], "clusters": 5}, "keys"), ({**config["keys"], "grid": "8"}, "keys.grid"),
                      ({**config["keys"], "source": "imagenet"}, "keys.source"), ("x", "keys must be")):
        path = rewrite("t.safetensors", {"unlearnable.config": json.dumps({**config, "keys": keys})})
        with pytest.raises(GeneratorFileError, match=msg):
            load_generator(path)
    path = rewrite("t2.safetensors", tensor_update={"keys.centres": torch.zeros(7, 192)})
    with pytest.raises(GeneratorFileError, match="keys.centres"):
        load_generator(path)


def test_trained_encoder_travels_inside_the_generator(tmp_path):
    """train-encoder on labelled pictures; its features key a generator trained on a flat folder."""
    from unlearnable.io.genfile import load_keys
    from unlearnable.synthetic import make_synthetic_folder

    make_synthetic_folder(tmp_path / "labelled", num_classes=3, per_class=10, size=16)
    enc = tmp_path / "enc.safetensors"
    res = runner.invoke(app, ["train-encoder", str(tmp_path / "labelled"), "--out", str(enc), "--epochs", "1",
                              "--image-size", "16", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["classes"] == 3 and "training the encoder" in res.output  # progress in a log
    keys = load_keys(enc)
    assert keys.config.encoder == "small-cnn" and keys.config.clusters == 3
    res = runner.invoke(app, ["poison", str(tmp_path / "labelled"), "--gen", str(enc)])
    assert res.exit_code == 1 and "key-encoder file, not a generator" in res.output

    flat_folder(tmp_path / "photos", per_class=8)
    gen = tmp_path / "gen.safetensors"
    train_generator(tmp_path / "photos", gen, _tiny(clusters=4, encoder=str(enc)), CPU)
    model, info = load_generator(gen)
    assert info.config.keys.encoder == "small-cnn" and info.config.keys.clusters == 4
    for name, tensor in keys.encoder.state_dict().items():  # the very encoder, not a retrained one
        assert torch.equal(model.keys.encoder.state_dict()[name], tensor), name
    x = torch.rand(5, 3, 40, 24)
    k = model.key(x)
    assert k.shape == (5,) and int(k.max()) < 4
    assert torch.equal(load_keys(gen).centres, model.keys.centres)  # a keyed generator is an encoder file too


def test_poison_without_gen_uses_the_built_in_generator_and_says_so(tmp_path, monkeypatch):
    from unlearnable.cli import poison_cmd as cli_main
    from unlearnable.methods import default_generator

    flat_folder(tmp_path / "photos", per_class=2)
    if default_generator() is not None:  # this checkout ships one
        res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(tmp_path / "out"), "--json"],
                            env={"COLUMNS": "250"})
        assert res.exit_code == 0, res.output
        said = " ".join(res.output.split())
        assert "using the built-in generator" in said and "it protects pictures it never saw, but less than one trained on your own pictures" in said
        assert json.loads(res.stdout)["protected"] == 6
    monkeypatch.setattr(cli_main, "default_generator", lambda: None)
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(tmp_path / "out2")])
    assert res.exit_code == 1 and "no built-in generator" in res.output


def test_train_generator_names_the_pictures_it_skipped_and_the_follower_it_played(tmp_path):
    flat_folder(tmp_path / "photos", per_class=4)
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a picture")
    res = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), "--warmup-epochs", "1", "--epochs", "0",
                              "--image-size", "16", "--encoder", "colour", "--out", str(tmp_path / "g.safetensors"),
                              "--json"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["images"] == 12 and data["skipped"] == 1
    assert data["skipped_files"][0]["path"] == "broken.jpg" and "cannot decode" in data["skipped_files"][0]["reason"]
    assert "skipped broken.jpg: cannot decode" in res.stderr
    assert "follower" in res.stderr and "small-cnn" in res.stderr  # the summary names the game's follower


def test_keys_from_the_small_copy_are_the_keys_of_the_whole_picture(tmp_path):
    """poison finds a large picture's key on the copy it computes the perturbation at (no second resize)."""
    import torch.nn.functional as F

    from unlearnable.poison.tiling import batch_keys

    flat_folder(tmp_path / "photos", per_class=8)
    gen_path = tmp_path / "gen.safetensors"
    train_generator(tmp_path / "photos", gen_path, _tiny(clusters=3), CPU)
    gen, _ = load_generator(gen_path)
    x = F.interpolate(synthetic_images(3, 4, 16, seed=9)[0], size=(160, 224), mode="bilinear")
    small = F.interpolate(x, size=(16, 22), mode="bilinear", antialias=True, align_corners=False)  # work size 16
    known = [None] * len(x)
    assert torch.equal(batch_keys(gen, small, known), batch_keys(gen, x, known))


def test_the_built_in_generator_has_imagenet_keys_and_small_cnn_asks_for_a_file():
    """The built-in generator is keyed by the default ImageNet encoder; `--encoder small-cnn`,
    whose key model came with the file shipped before, says in one line how to get one."""
    from unlearnable.errors import ConfigError
    from unlearnable.io.genfile import load_keys
    from unlearnable.methods import default_generator
    from unlearnable.methods.gue import DEFAULT_ENCODER, encoder_choice

    gen = default_generator()
    if gen is None:  # an installation without the shipped file
        pytest.skip("no built-in generator in this installation")
    assert load_keys(gen).config.encoder == DEFAULT_ENCODER
    with pytest.raises(ConfigError, match="train-encoder") as err:
        encoder_choice("small-cnn")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("option, field, value, target, seen_of", [
    ("--kmeans-starts", "kmeans_starts", 4, "kmeans", lambda args, kw: kw.get("starts", args[4] if len(args) > 4 else 1)),
    ("--key-neighbours", "key_neighbours", 5, "refine_by_neighbours",
     lambda args, kw: kw.get("neighbours", args[2] if len(args) > 2 else 20)),
])
def test_cluster_options_reach_the_keys_and_are_refused_with_folder_keys(tmp_path, monkeypatch, option, field, value,
                                                                         target, seen_of):
    """`--kmeans-starts N` reaches K-means, `--key-neighbours N` the refinement (both recorded in the
    file's settings); folder keys fit no clusters, so both are refused with them."""
    from unlearnable.models import keys as keys_module

    flat_folder(tmp_path / "photos", per_class=4)
    seen = []
    real = getattr(keys_module, target)

    def spy(*args, **kw):
        seen.append(seen_of(args, kw))
        return real(*args, **kw)

    monkeypatch.setattr(keys_module, target, spy)
    gen = tmp_path / "g.safetensors"
    res = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), "--warmup-epochs", "1", "--epochs", "0",
                              "--image-size", "16", "--encoder", "colour", "--clusters", "3", option, str(value),
                              "--out", str(gen), "--json"])
    assert res.exit_code == 0, res.output
    assert seen == [value] and load_generator(gen)[1].training[field] == value
    res = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), "--keys", "folders", option, str(value),
                              "--out", str(tmp_path / "h.safetensors")])
    assert res.exit_code == 2 and f"{option} goes with --keys clusters" in res.output

def test_neighbour_refinement_moves_a_cut_into_the_gap():
    """Centres whose border cuts through a dense group, another group lying apart: refined so
    that neighbours share a key, the border moves into the gap and each group is one key."""
    import torch.nn.functional as F

    from unlearnable.models.keys import refine_by_neighbours

    g = torch.Generator().manual_seed(0)
    p = torch.cat([torch.randn(100, 2, generator=g) * 0.1, torch.randn(100, 2, generator=g) * 0.1 + torch.tensor([1.0, 0])])
    f = F.normalize(torch.cat([p, torch.full((200, 1), 2.0)], 1), dim=1)
    cut = F.normalize(torch.tensor([[0.0, -0.1, 2.0], [0.0, 0.1, 2.0]]), dim=1)  # both centres in the first group
    before = torch.cdist(f, cut).argmin(1)
    assert before[:100].unique().numel() == 2  # the cut runs through the first group
    for seed in (0, 1):
        after = torch.cdist(f, refine_by_neighbours(f, cut, neighbours=10, seed=seed)).argmin(1)
        assert after[:100].unique().numel() == 1 and after[100:].unique().numel() == 1 and after[0] != after[100]
