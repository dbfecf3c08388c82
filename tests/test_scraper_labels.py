"""A protection check with no labels: the trainer labels the pictures as a scraper would."""

import json

from PIL import Image

from typer.testing import CliRunner

from unlearnable.cli.main import app

from .conftest import flat_folder, make_generator

runner = CliRunner()


def test_evaluate_a_flat_folder_with_no_labels_names_the_labels_it_used(tmp_path):
    flat_folder(tmp_path / "photos", n_classes=4, per_class=15, size=32)
    gen = make_generator(tmp_path / "gen.safetensors")
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--gen", str(gen), "--out", str(tmp_path / "prot")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["evaluate", str(tmp_path / "prot"), "--clean", str(tmp_path / "photos"), "--epochs", "1",
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert "top-1 ImageNet class" in out["labels"] and "classes (" in out["labels"]
    assert "top-1 ImageNet class" in res.output  # said on the terminal too
    assert out["train_images"] == 48 and out["test_images"] == 12  # the held-out fifth
    assert out["clean_accuracy"] is not None
    picture = tmp_path / "prot.evaluation.png"
    with Image.open(picture) as img:  # the learning curves, a real PNG
        assert img.format == "PNG" and img.width > 400

    res = runner.invoke(app, ["defend", str(tmp_path / "prot"), "--clean", str(tmp_path / "photos"), "--epochs", "1",
                              "--defense", "grayscale", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert "top-1 ImageNet class" in out["labels"] and [r["defense"] for r in out["rows"]] == ["grayscale"]
    with Image.open(out["picture"]) as img:  # the matrix as grouped bars
        assert img.format == "PNG" and img.width > 400
