import json

from PIL import Image
from typer.testing import CliRunner

from unlearnable import __version__
from unlearnable.cli.main import app

runner = CliRunner()


def _folder(root, n=3):
    for i in range(n):
        (root / "c").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (12 + i, 10), (10 * i, 50, 90)).save(root / "c" / f"{i}.png")
    return root


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output


def test_poison_json_is_one_object(tmp_path, gen_file):
    src = _folder(tmp_path / "in")
    res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file), "--out", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["protected"] == 3 and data["max_change_levels"] <= data["budget_levels"] == 8


def test_poison_default_output_is_sibling(tmp_path, gen_file):
    src = _folder(tmp_path / "photos")
    res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "photos_protected" / "c" / "0.png").exists()


def test_user_errors_are_one_red_line(tmp_path, gen_file):
    src = _folder(tmp_path / "in")
    res = runner.invoke(app, ["poison", str(src), "--gen", str(tmp_path / "nope.safetensors")])
    assert res.exit_code == 1
    assert "does not exist" in res.output and "Traceback" not in res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["poison", str(tmp_path / "empty"), "--gen", str(gen_file)])
    assert res.exit_code == 1 and "no pictures found" in res.output


def test_bare_eps_is_a_usage_error(tmp_path):
    res = runner.invoke(app, ["train-generator", str(tmp_path), "--eps", "8"])
    assert res.exit_code == 2 and "did you mean 8/255?" in res.output
    res = runner.invoke(app, ["train-generator", str(tmp_path), "--eps", "0"])
    assert res.exit_code == 2


def test_unknown_option_is_usage_error():
    assert runner.invoke(app, ["poison", "--frobnicate"]).exit_code == 2


def test_help_lists_only_real_commands():
    res = runner.invoke(app, ["--help"])
    for name in ("train-generator", "poison", "evaluate", "demo"):
        assert name in res.output


def test_evaluate_takes_folders_from_the_last_poison_run(tmp_path, gen_file, monkeypatch):
    import unlearnable.cli.trainer_cmd as cli_main
    from unlearnable.errors import UnlearnableError

    seen = {}

    def fake_evaluate(protected_dir, test, clean, config, device, on_stage, on_epoch, ctx, on_labels=None):
        seen.update(protected=protected_dir, test=test, clean=clean, adv=config.recipe.adv_eps, ratio=config.protect_ratio)
        raise UnlearnableError("stopped after checking the arguments")

    monkeypatch.setattr(cli_main, "evaluate_protection", fake_evaluate)
    src = _folder(tmp_path / "photos")
    assert runner.invoke(app, ["poison", str(src), "--gen", str(gen_file)]).exit_code == 0
    res = runner.invoke(app, ["evaluate", "--adv-eps", "4/255"])  # no test folder: held-out originals
    assert "stopped after checking" in res.output and seen["test"] is None and seen["clean"] == src.resolve()
    _folder(tmp_path / "test")
    res = runner.invoke(app, ["evaluate", "--test", str(tmp_path / "test"), "--adv-eps", "4/255", "--protect-ratio", "0.4"])
    assert "stopped after checking" in res.output
    assert seen["protected"] == (tmp_path / "photos_protected").resolve()
    assert seen["clean"] == src.resolve()
    assert abs(seen["adv"] - 4 / 255) < 1e-9 and seen["ratio"] == 0.4


def test_demo_never_touches_a_folder_it_did_not_make(tmp_path):
    """The demo used to delete train/, test/ and new_uploads/ of any folder holding a train/."""
    root = tmp_path / "work"
    for sub in ("train", "test", "new_uploads"):
        (root / sub).mkdir(parents=True)
        (root / sub / "mine.txt").write_text("the user's only copy")
    res = runner.invoke(app, ["demo", str(root)])
    assert res.exit_code == 1 and "not empty" in res.output and "Traceback" not in res.output
    for sub in ("train", "test", "new_uploads"):
        assert (root / sub / "mine.txt").read_text() == "the user's only copy"
    assert sorted(p.name for p in root.iterdir()) == ["new_uploads", "test", "train"]
    (tmp_path / "afile").write_text("x")
    res = runner.invoke(app, ["demo", str(tmp_path / "afile")])
    assert res.exit_code == 1 and "is a file" in res.output and (tmp_path / "afile").read_text() == "x"


def test_flags_show_no_bool_metavar():
    assert "<bool>" not in runner.invoke(app, ["--help"]).output
    for command in ("poison", "train-generator", "evaluate", "defend", "demo", "train-encoder"):
        shown = runner.invoke(app, [command, "--help"]).output
        lines = [line for line in shown.splitlines() if any(f in line for f in ("--json", "--strict", "--resume", "--help"))]
        assert lines and not any("<bool>" in line for line in lines), (command, lines)


def test_poison_checks_the_folder_before_announcing_the_built_in_generator(tmp_path):
    res = runner.invoke(app, ["poison", str(tmp_path / "nothere")])
    assert res.exit_code == 1 and "does not exist" in res.output and "built-in generator" not in res.output


def test_lossy_formats_say_what_they_cost(tmp_path, gen_file):
    src = _folder(tmp_path / "in")
    said = {}
    for fmt, quality in (("jpeg", 90), ("jpeg", 70), ("webp", 85)):
        res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file), "--out", str(tmp_path / f"{fmt}{quality}"),
                                  "--format", fmt, "--quality", str(quality)])
        assert res.exit_code == 0, res.output
        said[fmt, quality] = " ".join(res.output.split())
    assert "kept almost all of the protection" in said["jpeg", 90] and "warning" not in said["jpeg", 90]
    assert "warning: jpeg at quality 70 weakens the protection" in said["jpeg", 70]
    assert "warning: webp at quality 85 weakens the protection" in said["webp", 85]
    assert all("png keeps it exact" in text for text in said.values())


def test_evaluate_on_a_flat_folder_without_labels_says_how_to_give_them(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (10 * i, 5, 5)).save(flat / f"{i}.png")
    for command in ("evaluate", "defend"):
        res = runner.invoke(app, [command, str(flat), "--test", str(flat), "--epochs", "1"])
        assert res.exit_code == 1 and "Traceback" not in res.output
        assert "has no class sub-folders: give the trainer's labels with --labels FILE" in " ".join(res.output.split())
        # with --clean and no --test cluster labels stand in, or a scraper's; three pictures are too few for either
        res = runner.invoke(app, [command, str(flat), "--clean", str(flat), "--epochs", "1"])
        assert res.exit_code == 1 and "Traceback" not in res.output
        said = " ".join(res.output.split())
        assert "3 pictures are too few to cluster" in said and "--labels FILE" in said
        res = runner.invoke(app, [command, str(flat), "--clean", str(flat), "--epochs", "1", "--auto-labels", "imagenet"])
        assert res.exit_code == 1 and "Traceback" not in res.output
        said = " ".join(res.output.split())
        assert "fewer than 2 ImageNet classes" in said and "--labels FILE" in said
