"""`poison --fit-keys` fits a generator's keys to the folder it protects (unlearnable/poison/fit_keys.py)."""

import json
from collections import Counter

import torch
from typer.testing import CliRunner

from unlearnable.cli.main import app
from unlearnable.game.push import FeaturePush, clean_features
from unlearnable.io.codec import encode_image
from unlearnable.io.files import atomic_write_bytes, sha256_file
from unlearnable.io.genfile import load_generator
from unlearnable.methods import default_generator
from unlearnable.poison.fit_keys import FITTED, _match
from unlearnable.resize import fit_center
from unlearnable.synthetic import synthetic_images

from .conftest import make_generator

runner = CliRunner()


def _shapes(root, per_class=50, seed=0):
    """200 pictures of 4 synthetic shapes in one flat folder, shuffled names; (pictures, classes)."""
    x, y = synthetic_images(4, per_class, 32, seed)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    root.mkdir(parents=True)
    for i, j in enumerate(order.tolist()):
        atomic_write_bytes(root / f"IMG_{i:04d}.png", encode_image(x[j].permute(1, 2, 0), None))
    return x[order].float() / 255, y[order]


def _purity(keys: torch.Tensor, y: torch.Tensor) -> float:
    return sum(max(Counter(y[keys == k].tolist()).values()) for k in keys.unique().tolist()) / len(y)


def test_the_built_in_generator_fits_its_keys_to_the_folder_by_default_and_uses_them_again(tmp_path):
    x, y = _shapes(tmp_path / "photos")
    out = tmp_path / "prot"
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(out), "--json"])  # --fit-keys auto
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    fitted = out / FITTED
    assert result["fitted_keys"] == str(fitted) and result["fitted_pictures"] == 200 and not result["fitted_reused"]
    assert f"--gen {fitted}" in res.output  # how later uploads get the same keys
    manifest = json.loads((out / "manifest.json").read_text())
    built_in, _ = load_generator(default_generator())
    own, _ = load_generator(fitted)
    assert manifest["header"]["generator_sha256"] == sha256_file(fitted)  # the fitted file protected them
    # the built-in keys put these shapes into one or two keys (chance purity, 0.25);
    # fitted to the folder, they follow the shapes (measured 0.80-0.82 over three seeds)
    assert _purity(built_in.key(x), y) <= 0.3
    assert _purity(own.key(x), y) >= 0.7 and len(own.key(x).unique()) == 10
    assert len(manifest["files"]) == 200

    again = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(out), "--fit-keys", "yes", "--json"])
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)
    assert result["fitted_reused"] and result["already_done"] == 200 and result["protected"] == 0

    # later uploads with the fitted file: a file that is not the built-in one keeps its keys under auto
    later = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--gen", str(fitted), "--out",
                                str(tmp_path / "later"), "--json"])
    assert later.exit_code == 0, later.output
    result = json.loads(later.stdout)
    assert result["fitted_keys"] is None and result["keys_kept"] == ""
    assert not (tmp_path / "later" / FITTED).exists()


def test_auto_keeps_the_built_in_keys_of_a_folder_protected_with_them_before(tmp_path):
    _shapes(tmp_path / "photos")
    out = tmp_path / "prot"
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(out), "--fit-keys", "no", "--json"])
    assert res.exit_code == 0, res.output
    again = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(out), "--json"])
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)
    assert result["fitted_keys"] is None and "an earlier run into this folder" in result["keys_kept"]
    assert result["already_done"] == 200 and not (out / FITTED).exists()
    refused = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(out), "--fit-keys", "yes"])
    assert refused.exit_code == 1 and "--fit-keys no" in refused.output


def test_a_small_folder_keeps_the_built_in_keys_and_yes_is_refused_where_it_cannot_work(tmp_path):
    _shapes(tmp_path / "photos", per_class=10)  # 40 pictures: too few for 10 keys
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(tmp_path / "a"), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["fitted_keys"] is None
    assert "40 pictures are fewer than the 200" in json.loads(res.stdout)["keys_kept"]
    assert not (tmp_path / "a" / FITTED).exists()
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(tmp_path / "e")])
    assert res.exit_code == 0 and "kept the built-in generator's own keys" in res.output
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(tmp_path / "a"), "--fit-keys", "yes"])
    assert res.exit_code == 1 and "needs at least 200" in res.output  # checked before anything is fitted
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(tmp_path / "b"), "--fit-keys", "yes"])
    assert res.exit_code == 1 and "needs at least 200 pictures" in res.output and "Traceback" not in res.output
    plain = make_generator(tmp_path / "gen.safetensors")  # no key model: nothing to fit
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--gen", str(plain), "--out", str(tmp_path / "c"),
                              "--fit-keys", "yes"])
    assert res.exit_code == 2 and "needs a generator with cluster keys" in res.output
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(tmp_path / "d"), "--fit-keys", "maybe"])
    assert res.exit_code == 2 and "auto, yes or no" in res.output


def test_each_new_cluster_takes_the_key_most_of_its_pictures_had():
    old = torch.tensor([2, 2, 2, 0, 0, 1, 1, 1, 1])
    new = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 0])
    assert _match(new, old, 3) == [2, 0, 1]
    assert sorted(_match(torch.tensor([0, 0, 0]), torch.tensor([1, 1, 1]), 3)) == [0, 1, 2]  # a permutation


def test_push_steps_with_the_built_in_generator_take_each_keys_centre_from_the_folder(tmp_path):
    """The built-in generator carries no push centres: fitting its keys finds them in the same pass."""
    x, _ = _shapes(tmp_path / "photos", seed=3)
    out = tmp_path / "prot"
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--out", str(out), "--push-steps", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["fitted_pictures"] == 200
    own, info = load_generator(out / FITTED)
    assert info.format_version == 4 and info.config.keys.push == "efficientnet-lite0"
    push = FeaturePush.from_keys(own.keys)
    keys = own.key(x)
    with torch.no_grad():  # each key's centre is its own pictures' direction: most pictures are nearest their own
        f = clean_features(push.encoder, fit_center(x, info.image_size), push.size)
        nearest = (torch.nn.functional.normalize(f - push.mean, dim=1) @ push.centres.T).argmax(1)
    assert nearest.eq(keys).float().mean() > 0.5
    # a folder too small to fit keys on is refused before anything is written
    small = tmp_path / "few"
    small.mkdir()
    for name in sorted((tmp_path / "photos").iterdir())[:30]:
        (small / name.name).write_bytes(name.read_bytes())
    bad = runner.invoke(app, ["poison", str(small), "--out", str(tmp_path / "few_out"), "--push-steps", "2"])
    assert bad.exit_code == 2 and "20 pictures a key" in bad.output and not (tmp_path / "few_out").exists()
