"""`train-generator --candidates N`: N seeds trained a quarter of the way, the label-free check's best finished (unlearnable/candidates.py)."""

import json

import torch

from typer.testing import CliRunner

from unlearnable.cli.main import app
from unlearnable.io.files import sha256_file
from unlearnable.io.genfile import load_generator

from .conftest import flat_folder

runner = CliRunner()
ARGS = ["--warmup-epochs", "4", "--epochs", "0", "--image-size", "16", "--encoder", "colour", "--clusters", "3"]


def test_candidates_are_trained_checked_and_the_best_kept_then_resumed(tmp_path, monkeypatch):
    from unlearnable.models.keys import ClusterKeys

    passes = []  # the pictures' key features: found once, shared by every candidate and the kept one's end
    found = ClusterKeys.raw_features_of.__func__
    monkeypatch.setattr(ClusterKeys, "raw_features_of", classmethod(lambda *a, **k: passes.append(1) or found(*a, **k)))
    flat_folder(tmp_path / "photos", n_classes=3, per_class=16, size=32)
    out = tmp_path / "g.safetensors"
    res = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), *ARGS, "--candidates", "2", "--seed", "5",
                              "--out", str(out), "--json"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    seeds = [c["seed"] for c in data["candidates"]]
    assert seeds == [5, 6] and "K-means clusters" in data["check_labels"]
    scores = [c["check_accuracy"] for c in data["candidates"]]
    kept = data["candidates"][scores.index(min(scores))]
    assert data["kept_seed"] == kept["seed"] and sha256_file(out) == sha256_file(kept["file"])  # the best is the file
    assert 0 <= data["check_clean_accuracy"] <= 1 and "candidates" in res.stderr and len(passes) == 1
    other = data["candidates"][1 - scores.index(min(scores))]
    assert load_generator(other["file"])[1].training["paused_at_epoch"] == 1  # checked after a quarter, left there
    gen, info = load_generator(out)
    assert "paused_at_epoch" not in info.training and data["epochs_done"] == 4  # the kept one ran to the end...
    assert not list((tmp_path / "g.candidates").glob("*.ckpt"))
    alone = tmp_path / "alone.safetensors"  # ...and is the generator its seed trains alone
    res = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), *ARGS, "--seed", str(kept["seed"]),
                              "--out", str(alone)])
    assert res.exit_code == 0, res.output
    for (name, a), b in zip(gen.state_dict().items(), load_generator(alone)[0].state_dict().values()):
        assert torch.equal(a, b), name

    again = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), *ARGS, "--candidates", "2", "--seed", "5",
                                "--out", str(out)])
    assert again.exit_code == 1 and "--resume" in again.output and "Traceback" not in again.output
    resumed = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), *ARGS, "--candidates", "2", "--seed",
                                  "5", "--out", str(out), "--resume", "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["candidates"] == data["candidates"]  # nothing trained again, the same check


def test_candidates_need_cluster_keys(tmp_path):
    from unlearnable.synthetic import make_synthetic_folder

    make_synthetic_folder(tmp_path / "labelled", num_classes=3, per_class=4, size=16)
    res = runner.invoke(app, ["train-generator", str(tmp_path / "labelled"), "--keys", "folders", "--candidates", "2",
                              "--warmup-epochs", "1", "--epochs", "0", "--image-size", "16", "--encoder", "colour",
                              "--out", str(tmp_path / "g.safetensors")])
    assert res.exit_code == 2 and "cluster keys" in res.output


def test_the_cpu_preset_trains_several_candidates_where_the_check_can_judge_them(tmp_path, monkeypatch):
    from dataclasses import replace

    from unlearnable.methods import candidates
    from unlearnable.training.generator import PRESETS

    flat_folder(tmp_path / "photos", n_classes=3, per_class=16, size=32)  # 48 pictures
    cpu = PRESETS["cpu"]
    assert cpu.candidates is None and PRESETS["paper"].candidates == 1  # the paper's settings train one
    assert candidates.how_many(cpu, tmp_path / "photos") == 1  # too few pictures for the check
    monkeypatch.setattr(candidates, "AUTO_PICTURES", 48)
    assert candidates.how_many(cpu, tmp_path / "photos") == candidates.AUTO == 3
    assert candidates.how_many(replace(cpu, max_images=47), tmp_path / "photos") == 1
    assert candidates.how_many(replace(cpu, keys="folders"), tmp_path / "photos") == 1  # the check needs clusters
    assert candidates.how_many(replace(cpu, max_minutes=5.0), tmp_path / "photos") == 1
    assert candidates.how_many(replace(cpu, candidates=1), tmp_path / "photos") == 1  # --candidates 1
    assert candidates.how_many(replace(cpu, candidates=2), tmp_path / "photos") == 2


def test_a_folder_large_enough_gets_candidates_by_default_and_says_so(tmp_path, monkeypatch):
    from unlearnable.methods import candidates

    monkeypatch.setattr(candidates, "AUTO_PICTURES", 48)  # this folder counts as large...
    monkeypatch.setattr(candidates, "AUTO", 2)  # ...and two candidates keep the test short
    flat_folder(tmp_path / "photos", n_classes=3, per_class=16, size=32)
    res = runner.invoke(app, ["train-generator", str(tmp_path / "photos"), *ARGS, "--out", str(tmp_path / "g.safetensors"),
                              "--json"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert [c["seed"] for c in json.loads(res.stdout)["candidates"]] == [0, 1]
    assert "2 candidates: the default on a folder this size; --candidates 1 trains one generator" in res.stderr


def test_progress_counts_the_steps_of_the_whole_candidates_run(tmp_path):
    """The time left a candidates run shows is the whole run's: one count of steps over every trial and the
    kept one's end, never going back, ending at its total (it restarted for each candidate)."""
    from unlearnable.budget import parse_budget
    from unlearnable.methods.gue import GUE

    flat_folder(tmp_path / "photos", n_classes=3, per_class=16, size=32)
    given = {"warmup_epochs": 4, "epochs": 0, "encoder": "colour", "clusters": 3, "candidates": 3, "batch_size": 16}
    settings = GUE.settings("cpu", parse_budget("8/255"), 16, 5, given)
    seen = []
    GUE.train(tmp_path / "photos", tmp_path / "g.safetensors", settings, torch.device("cpu"),
              on_progress=lambda done, total, info: seen.append((done, total, info)))
    steps = [(d, t) for d, t, info in seen if "min-min ep" in info]
    totals = {t for _, t in steps}
    assert len(totals) == 1, totals  # one count for the whole run
    done = [d for d, _ in steps]
    assert done == sorted(done) and done[-1] == totals.pop()  # forward only, to the end
    assert any("finding keys" in info for _, _, info in seen)  # the keys report on their own count
    assert any(info.startswith("candidate 3/3") for _, _, info in seen)


def test_epochs_are_named_in_the_singular_and_the_plural():
    from unlearnable.training.schedule import epochs_text

    assert (epochs_text(1), epochs_text(3), epochs_text(0)) == ("1 epoch", "3 epochs", "0 epochs")
