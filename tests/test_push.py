"""--feature-push: the perturbation also moves an ImageNet network's features towards the next key's."""

import json
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from unlearnable.cli.main import app
from unlearnable.data import load_pictures
from unlearnable.errors import EncoderUnavailableError
from unlearnable.game.push import FeaturePush, clean_features
from unlearnable.io.genfile import load_generator, read_info
from unlearnable.models.keys import KeyConfig
from unlearnable.models.pretrained import PRETRAINED
from unlearnable.synthetic import make_synthetic_folder, synthetic_images
from unlearnable.training.generator import PRESETS, train_generator

from .conftest import flat_folder

runner = CliRunner()
CPU = torch.device("cpu")
NET = "efficientnet-lite0"


def _push(x, y, keys=3, **kw):
    return FeaturePush.fit(NET, x, y, keys, size=kw.pop("size", 64), batch=kw.pop("batch", 32), weight=1.0, **kw)


def test_centres_are_the_unit_means_of_each_keys_centred_features():
    x, y = synthetic_images(3, 4, 16, 0)
    push = _push(x, y)  # from uint8 pictures, as training holds them
    x = x.float() / 255
    f = push.features(x)  # centred on the same pictures' mean, unit length
    assert torch.allclose(f.norm(dim=1), torch.ones(len(x)), atol=1e-5)
    for k in range(3):
        mean = f[y == k].mean(0)
        assert torch.allclose(push.centres[k], mean / mean.norm(), atol=1e-4)
    # given the same pictures' features, fit gives the same push without another pass
    again = _push(x, y, raw=clean_features(push.encoder, x, push.size))
    assert torch.allclose(again.centres, push.centres, atol=1e-5)


def test_the_loss_falls_as_a_perturbation_within_the_budget_follows_its_gradient():
    """The push's gradient reaches the pixels through the frozen network: a few signed steps of
    8/255 move most pictures' features to the next key's centre, and the network stays frozen."""
    x, y = synthetic_images(3, 6, 16, 1)
    x = x.float() / 255
    push = _push(x, y)
    before = [p.clone() for p in push.encoder.parameters()][:3]
    delta = torch.zeros_like(x, requires_grad=True)
    start = push.loss(x, delta, y).item()
    for _ in range(5):
        (g,) = torch.autograd.grad(push.loss(x, delta, y), delta)
        with torch.no_grad():
            delta -= 2 / 255 * g.sign()
            delta.clamp_(-8 / 255, 8 / 255)
    assert push.loss(x, delta, y).item() < start - 0.5
    with torch.no_grad():
        hit = (push.features((x + delta).clamp(0, 1)) @ push.centres.T).argmax(1).eq((y + 1) % 3).float().mean()
    assert hit > 0.5
    assert all(torch.equal(a, b) for a, b in zip(before, push.encoder.parameters()))
    assert not any(p.requires_grad for p in push.encoder.parameters())


def test_train_generator_with_the_push_records_it_and_reports_its_loss(tmp_path):
    make_synthetic_folder(tmp_path / "train", num_classes=3, per_class=8, size=16)
    out = tmp_path / "g.safetensors"
    seen = []
    config = replace(PRESETS["cpu"], min_steps=0, warmup_epochs=2, epochs=0, batch_size=8, image_size=16,
                     keys="folders", feature_push=NET, push_size=64, push_batch=4, candidates=1)
    train_generator(tmp_path / "train", out, config, CPU, on_step=seen.append,
                    on_push=lambda done, total: seen.append({"push_pass": (done, total)}))
    passes = [s["push_pass"] for s in seen if "push_pass" in s]
    assert passes == [(0, 24), (24, 24)]  # the pass starts from zero: a log shows it even in one chunk
    steps = [s for s in seen if "J_c" in s]
    assert steps and all(s["push"] > 0 for s in steps)
    assert read_info(out).training["feature_push"] == NET


def test_the_cli_names_the_push_and_refuses_what_it_cannot_do(tmp_path):
    flat_folder(tmp_path / "photos", n_classes=2, per_class=12)
    out = tmp_path / "g.safetensors"
    ok = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), "--warmup-epochs", "1", "--epochs", "0",
                             "--feature-push", NET, "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "feature push" in ok.output and NET in ok.output  # the summary names it
    for extra, words in ((["--feature-push", "efficientnet-lite9"], "unknown --feature-push"),
                         (["--feature-push", NET, "--epochs", "2"], "min-min epochs only"),
                         (["--feature-push", NET, "--image-only"], "needs keys")):
        bad = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), "--warmup-epochs", "1",
                                  "--out", str(tmp_path / "b.safetensors"), *extra])
        assert bad.exit_code != 0 and words in bad.output, (extra, bad.output)
        assert "Traceback" not in bad.output


def test_refine_pushes_each_picture_within_the_budget_the_same_in_any_batch():
    """`poison --push-steps`: signed steps on each picture's own loss, clamped to the budget."""
    x, y = synthetic_images(3, 6, 16, 2)
    x = x.float() / 255
    push = _push(x, y)
    eps = 8 / 255
    start = torch.zeros_like(x)
    pushed = push.refine(x, start, y, 5, eps)
    assert pushed.abs().max() <= eps + 1e-7 and not pushed.requires_grad
    with torch.no_grad():
        hit = lambda d: (push.features((x + d).clamp(0, 1)) @ push.centres.T).argmax(1).eq((y + 1) % 3).float().mean()
        assert hit(pushed) > 0.5 and hit(start) < 0.5
    alone = push.refine(x[:1], start[:1], y[:1], 5, eps)  # the first picture in a batch of one
    assert (alone - pushed[:1]).abs().gt(1e-6).float().mean() < 0.01
    assert torch.equal(push.refine(x, start, y, 0, eps), start)


def test_a_trained_file_carries_the_centres_and_poison_pushes_pictures_it_never_saw(tmp_path):
    flat_folder(tmp_path / "photos", n_classes=2, per_class=12, seed=0)
    flat_folder(tmp_path / "new", n_classes=2, per_class=6, seed=5)  # never seen in training
    gen = tmp_path / "g.safetensors"
    ok = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), "--warmup-epochs", "1", "--epochs", "0",
                             "--out", str(gen)])
    assert ok.exit_code == 0, ok.output
    assert read_info(gen).config.keys.push == NET  # without --feature-push too
    generator, _ = load_generator(gen)
    push = FeaturePush.from_keys(generator.keys)
    assert push.centres.shape == (generator.config.num_classes, 1280)
    assert torch.allclose(push.centres.norm(dim=1), torch.ones(len(push.centres)), atol=1e-5)
    hits = {}
    for steps in (0, 5):
        out = tmp_path / f"out{steps}"
        run = runner.invoke(app, ["poison", str(tmp_path / "new"), "--gen", str(gen), "--out", str(out),
                                  "--push-steps", str(steps), "--json"])
        assert run.exit_code == 0, run.output
        assert json.loads(run.stdout)["max_change_levels"] <= 8
        x = load_pictures(tmp_path / "new", 16, "none").x.float() / 255
        p = load_pictures(out, 16, "none").x.float() / 255
        with torch.no_grad():
            y = generator.key(x)
            hits[steps] = (push.features(p) @ push.centres.T).argmax(1).eq((y + 1) % len(push.centres)).float().mean()
    assert hits[5] > hits[0] + 0.3, hits
    # a folder protected with the push is continued only with the same number of steps
    again = runner.invoke(app, ["poison", str(tmp_path / "new"), "--gen", str(gen), "--out", str(tmp_path / "out5")])
    assert again.exit_code != 0 and "add --push-steps 5" in again.output, again.output


def test_poison_refuses_push_steps_with_a_file_that_has_no_centres(tmp_path):
    flat_folder(tmp_path / "photos", n_classes=2, per_class=3)
    out = tmp_path / "out"
    bad = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(out), "--push-steps", "3"])
    assert bad.exit_code == 2, bad.output  # the built-in generator carries none
    assert "--push-steps needs a generator file" in bad.output and "Traceback" not in bad.output
    assert not out.exists()


def test_a_file_whose_push_network_hash_differs_is_refused():
    keys = dict(clusters=2, grid=8, image_size=32, source="kmeans", encoder=None, encoder_classes=0,
                push=NET, push_sha256="0" * 64, push_size=96)
    with pytest.raises(EncoderUnavailableError, match="SHA-256"):
        KeyConfig.from_dict(keys)
    keys["push_sha256"] = PRETRAINED[NET].sha256
    assert KeyConfig.from_dict(keys).push == NET
