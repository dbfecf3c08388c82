"""A protection check with no labels: the trainer labels the pictures as a scraper would."""

import json

from PIL import Image

from typer.testing import CliRunner

from unlearnable.cli.main import app

from .conftest import flat_folder, make_generator

runner = CliRunner()


def _protected_flat_folder(tmp_path) -> None:
    """tmp_path/photos: 60 pictures of 4 classes in one flat folder; tmp_path/prot: protected."""
    flat_folder(tmp_path / "photos", n_classes=4, per_class=15, size=32)
    gen = make_generator(tmp_path / "gen.safetensors")
    res = runner.invoke(app, ["poison", str(tmp_path / "photos"), "--gen", str(gen), "--out", str(tmp_path / "prot")])
    assert res.exit_code == 0, res.output


def test_scraper_labels_on_a_flat_folder_name_the_classes_they_used(tmp_path):
    _protected_flat_folder(tmp_path)
    res = runner.invoke(app, ["evaluate", str(tmp_path / "prot"), "--clean", str(tmp_path / "photos"), "--epochs", "1",
                              "--auto-labels", "imagenet", "--json"])
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
                              "--defense", "grayscale", "--auto-labels", "imagenet", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert "top-1 ImageNet class" in out["labels"] and [r["defense"] for r in out["rows"]] == ["grayscale"]
    with Image.open(out["picture"]) as img:  # the matrix as grouped bars
        assert img.format == "PNG" and img.width > 400


def test_cluster_labels_follow_the_content_and_say_what_they_are(tmp_path):
    from collections import Counter

    import torch

    from unlearnable.scraper_labels import cluster_labels

    truth = flat_folder(tmp_path / "photos", n_classes=3, per_class=20, size=32, seed=0)
    labels, said = cluster_labels(tmp_path / "photos", torch.device("cpu"))
    assert said.startswith("labels: 3 K-means clusters of efficientnet-lite0's features")
    pairs = [(labels[name.rsplit(".", 1)[0]], cls) for name, cls in truth.items()]
    purity = sum(max(Counter(t for k, t in pairs if k == c).values()) for c in {k for k, _ in pairs}) / len(pairs)
    assert purity >= 0.55  # chance is about 0.4; measured 0.63-0.80 over three seeds of the folder


def test_cluster_labels_of_a_subset_label_the_pictures_load_pictures_keeps(tmp_path):
    import torch

    from unlearnable.data import load_pictures
    from unlearnable.scraper_labels import cluster_labels

    flat_folder(tmp_path / "photos", n_classes=3, per_class=20, size=32, seed=1)
    labels, said = cluster_labels(tmp_path / "photos", torch.device("cpu"), limit=45)
    kept = load_pictures(tmp_path / "photos", 32, labels="none", limit=45)
    assert sorted(labels) == sorted(p.rsplit(".", 1)[0] for p in kept.paths) and len(labels) == 45
    assert said.startswith("labels: 2 K-means clusters")  # K from the 45 pictures clustered, not the 60


def test_evaluate_with_cluster_labels_end_to_end_and_a_folder_too_small_for_them(tmp_path):
    """Cluster labels are the default with no labels at all."""
    _protected_flat_folder(tmp_path)
    res = runner.invoke(app, ["evaluate", str(tmp_path / "prot"), "--clean", str(tmp_path / "photos"), "--epochs", "1",
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["labels"].startswith("labels: 3 K-means clusters") and out["train_images"] == 48
    made = tmp_path / "prot.labels.csv"  # the labels, written beside the folder for --labels
    assert f"--labels {made} uses them again" in out["labels"]
    rows = made.read_text().splitlines()
    assert rows[0] == "path,label" and len(rows) == 61 and all(r.split(",")[1].startswith("cluster ") for r in rows[1:])
    res = runner.invoke(app, ["defend", str(tmp_path / "prot"), "--clean", str(tmp_path / "photos"), "--epochs", "1",
                              "--defense", "grayscale", "--labels", str(made), "--json"])
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert again["labels"] == f"labels: {made}" and again["train_images"] == out["train_images"]

    few = tmp_path / "few"
    flat_folder(few, n_classes=3, per_class=10, size=32)
    res = runner.invoke(app, ["evaluate", str(few), "--clean", str(few), "--epochs", "1", "--auto-labels", "clusters"])
    assert res.exit_code == 1 and "30 pictures are too few to cluster" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["evaluate", str(few), "--clean", str(few), "--auto-labels", "kmeans"])
    assert res.exit_code == 2 and "clusters, imagenet or folders" in res.output


def test_an_owners_albums_are_not_taken_for_classes(tmp_path):
    """Nested albums: every picture is labelled by clusters, and the output says how to use the folders instead."""
    _protected_flat_folder(tmp_path)
    for root in ("photos", "prot"):  # the same album layout in the originals and the protected copy
        pictures = sorted(p for p in (tmp_path / root).iterdir() if p.suffix in (".jpg", ".png"))
        for i, p in enumerate(pictures):
            album = tmp_path / root / ["", "2024", "2024/summer", "family"][i % 4]
            album.mkdir(parents=True, exist_ok=True)
            p.rename(album / p.name)
    prot, photos = str(tmp_path / "prot"), str(tmp_path / "photos")
    res = runner.invoke(app, ["evaluate", prot, "--clean", photos, "--epochs", "1", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["labels"].startswith("labels: 3 K-means clusters") and "--auto-labels folders" in out["labels"]
    assert out["train_images"] + out["test_images"] == 60  # the pictures at the top and two levels down too

    res = runner.invoke(app, ["evaluate", prot, "--clean", photos, "--epochs", "1", "--auto-labels", "folders", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["labels"] == "labels: the class sub-folders (--auto-labels folders)"
    assert out["train_images"] + out["test_images"] < 60  # two classes, 2024 and family: the top level has no class

    flat = tmp_path / "flat"
    flat_folder(flat, n_classes=2, per_class=10, size=32)
    res = runner.invoke(app, ["evaluate", str(flat), "--clean", str(flat), "--auto-labels", "folders"])
    assert res.exit_code == 1 and "has no sub-folders to take as classes" in res.output and "Traceback" not in res.output


def test_cluster_labels_asked_for_where_labels_exist_says_they_are_not_used(tmp_path):
    from unlearnable.synthetic import write_folder

    from .conftest import gratings

    write_folder(tmp_path / "photos", *gratings(6, seed=0), [f"class{c}" for c in range(8)])
    res = runner.invoke(app, ["evaluate", str(tmp_path / "photos"), "--test", str(tmp_path / "photos"), "--epochs", "1",
                              "--auto-labels", "imagenet", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["labels"] == ("labels: the class sub-folders (--auto-labels imagenet is for folders "
                                                "with no labels at all, so it is not used)")
