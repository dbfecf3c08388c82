"""A tool a data owner can trust: each test here failed on the code before its fix."""

import json
import os
import stat
from dataclasses import replace

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from unlearnable.cli.main import app
from unlearnable.io.codec import decode_image
from unlearnable.io.files import atomic_write_bytes
from unlearnable.synthetic import make_synthetic_folder
from unlearnable.training.generator import PRESETS, train_generator

runner = CliRunner(env={"COLUMNS": "250"})  # usage errors come in a box: keep the message on one line


def test_visible_budgets_need_an_explicit_flag(tmp_path):
    res = runner.invoke(app, ["train-generator", str(tmp_path), "--eps", "0.5"])
    assert res.exit_code == 2 and "plainly visible" in res.output and "--allow-visible" in res.output
    res = runner.invoke(app, ["demo", str(tmp_path / "d"), "--eps", "32/255"])
    assert res.exit_code == 2 and "plainly visible" in res.output
    # with the flag the budget is accepted (the run then fails on the empty folder, exit 1)
    res = runner.invoke(app, ["train-generator", str(tmp_path / "none"), "--eps", "0.5", "--allow-visible"])
    assert res.exit_code == 1 and "plainly visible" not in res.output and "does not exist" in res.output


def test_gen_that_is_a_folder_says_so(tmp_path):
    (tmp_path / "in").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "a.png")
    (tmp_path / "gens").mkdir()
    res = runner.invoke(app, ["poison", str(tmp_path / "in"), "--gen", str(tmp_path / "gens")])
    assert res.exit_code == 1 and "is a folder, not a protection file" in res.output


def test_small_tiles_are_refused():
    res = runner.invoke(app, ["poison", ".", "--gen", "x", "--tile", "64"])
    assert res.exit_code == 2


def test_no_pictures_names_the_suffixes_looked_for(tmp_path, gen_file):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("x")
    res = runner.invoke(app, ["poison", str(tmp_path / "docs"), "--gen", str(gen_file)])
    assert res.exit_code == 1 and ".png" in res.output and ".jpeg" in res.output and "ng, peg" not in res.output


def test_16_bit_pictures_are_rounded_not_floored(tmp_path):
    values = np.array([[2770, 257 * 200 + 129]], dtype=np.uint16)  # 10.78 -> 11, 200.5 -> 201
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)  # uint16 -> mode I;16
    rgb = decode_image(path).rgb
    assert rgb[0, :, 0].tolist() == [11, 201]


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o644


def test_train_generator_creates_the_output_folder_before_training(tmp_path):
    make_synthetic_folder(tmp_path / "train", num_classes=2, per_class=8, size=16)
    config = replace(PRESETS["cpu"], warmup_epochs=1, epochs=0, batch_size=16, image_size=16, min_steps=0, clusters=2)
    out = tmp_path / "new" / "dir" / "g.safetensors"
    train_generator(tmp_path / "train", out, config, torch.device("cpu"))
    assert out.is_file() and stat.S_IMODE(out.stat().st_mode) & 0o044  # readable like any file


def _log_progress(monkeypatch):
    """A LogProgress with a 100-step task on a clock the test sets (``now[0]``)."""
    from unlearnable.cli import common

    now = [0.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    progress = common.LogProgress()
    return progress, progress.add_task("training", total=100), now


def test_progress_in_a_log_prints_lines_with_an_eta(capsys, monkeypatch):
    progress, task, now = _log_progress(monkeypatch)
    for step in range(1, 101):
        now[0] = step * 1.0  # one step a second
        progress.update(task, completed=step, info=f"step {step}")
        if step % 30 == 0:
            progress.tick()  # what the heartbeat thread does every 30 seconds
    progress.tick()  # finished tasks stay quiet
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert [line.split(":")[1].split()[0] for line in lines] == ["1/100", "6/100", "30/100", "60/100", "90/100", "100/100"]
    assert "left" not in lines[0]  # one step says nothing about the rate
    assert "about 1:34 left" in lines[1]  # the first estimate, 5 s after the first step, not 30 s in
    assert "about 1:10 left" in lines[2]  # 30 steps in 30 s, 70 to go


def test_log_eta_ignores_the_wait_before_the_first_step(capsys, monkeypatch):
    """A task added before a minute of reading pictures estimates from its steps, not the wait."""
    progress, task, now = _log_progress(monkeypatch)
    for step in range(1, 31):
        now[0] = 60.0 + step  # a minute of loading, then one step a second
        progress.update(task, completed=step)
    progress.tick()
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert "left" not in lines[0] and "about 1:34 left" in lines[1] and "about 1:10 left" in lines[2], lines


def test_a_task_that_starts_a_new_phase_keeps_printing(capsys, monkeypatch):
    """Finding keys (100 pictures), then the game (50 steps) on the same task: the game's lines
    still come, every 30 s, with an estimate of their own."""
    progress, task, now = _log_progress(monkeypatch)
    progress.update(task, completed=100, info="finding keys")  # the first phase ends
    for step in range(1, 51):
        now[0] = 10.0 + step
        progress.update(task, completed=step, total=50, info="game")
        if step == 40:
            progress.tick()
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert [line.split(":")[1].split()[0] for line in lines] == ["100/100", "1/50", "6/50", "40/50", "50/50"], lines
    assert "about 0:10 left" in lines[3]


def test_a_second_pass_over_as_many_pictures_is_a_new_phase(capsys, monkeypatch):
    """Finding keys, then the push's features (--feature-push), both over the same 100 pictures:
    the second pass has the same total, and its lines come too."""
    progress, task, now = _log_progress(monkeypatch)
    progress.update(task, completed=100, info="finding keys")
    for done in (25, 50, 75, 100):
        now[0] += 1.0
        progress.update(task, completed=done, info="features to push")
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert [line.split(":")[1].split()[0] for line in lines] == ["100/100", "25/100", "100/100"], lines
    assert "features to push" in lines[-1]


def test_special_files_are_skipped_with_a_reason_not_read(tmp_path, gen_file):
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(src / "ok.png")
    os.symlink("/dev/zero", src / "zero.jpg")  # reading it would never end
    os.mkfifo(src / "pipe.png")
    os.symlink(tmp_path / "gone.png", src / "dangling.png")
    res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file), "--out", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    reasons = {s["path"]: s["reason"] for s in data["skipped"]}
    assert data["protected"] == 1 and set(reasons) == {"zero.jpg", "pipe.png", "dangling.png"}
    assert "broken link" in reasons["dangling.png"] and "could hang" in reasons["pipe.png"]
    assert "Traceback" not in res.output


def test_errors_under_json_are_a_json_object(tmp_path, gen_file):
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["poison", str(tmp_path / "empty"), "--gen", str(gen_file), "--json"])
    assert res.exit_code == 1
    err = json.loads(res.stdout)["error"]
    assert err["code"] == 1 and "no pictures found" in err["message"]
    res = runner.invoke(app, ["train-generator", str(tmp_path), "--keys", "nope", "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["error"]["code"] == 2


def test_disk_errors_are_one_line_and_resumable(tmp_path, gen_file, monkeypatch):
    from unlearnable.poison import pipeline as poison_module

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i, 20, 30)).save(src / f"{i}.png")
    real = poison_module.atomic_write_bytes

    def full(path, data):
        if path.suffix == ".png":
            raise OSError(28, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(poison_module, "atomic_write_bytes", full)
    res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1 and "No space left on device" in res.output and "Traceback" not in res.output
    assert "to resume" in res.output
    monkeypatch.setattr(poison_module, "atomic_write_bytes", real)
    res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file), "--out", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["protected"] == 3


def test_a_resume_record_cut_by_a_crash_survives_two_resumes(tmp_path, gen_file):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (i, 20, 30)).save(src / f"{i}.png")
    out = tmp_path / "out"
    res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file), "--out", str(out)])
    assert res.exit_code == 0
    # pretend the run crashed after two files, in the middle of writing the third line
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").unlink()
    lines = [json.dumps(manifest["header"])] + [json.dumps(e) for e in manifest["files"][:2]]
    (out / "manifest.partial.jsonl").write_text("\n".join(lines) + "\n" + json.dumps(manifest["files"][2])[:20])
    for f in manifest["files"][2:]:
        (out / f["output"]).unlink()
    first = (out / "manifest.partial.jsonl").read_text()
    from unlearnable.poison.record import State
    State(out, manifest["header"]).close()  # the first resume drops the cut line...
    with open(out / "manifest.partial.jsonl", "a") as fh:  # ...appends (as a run would)...
        fh.write(json.dumps(manifest["files"][2]) + "\n")
    assert (out / "manifest.partial.jsonl").read_text() != first
    res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output  # ...and the second resume still reads it
    assert json.loads(res.stdout)["already_done"] == 2


def test_a_grayscale_picture_stays_grayscale_within_budget(tmp_path, gen_file):
    src = tmp_path / "in"
    src.mkdir()
    Image.effect_noise((24, 20), 40).save(src / "g.png")  # mode L
    Image.effect_noise((24, 20), 40).convert("LA").save(src / "ga.png")
    res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file), "--out", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 0, res.output
    for name, mode in (("g.png", "L"), ("ga.png", "LA")):
        with Image.open(tmp_path / "out" / name) as out, Image.open(src / name) as orig:
            assert out.mode == mode
            diff = np.abs(np.asarray(out, dtype=int) - np.asarray(orig, dtype=int))
            assert 0 < diff.max() <= 8


def _pictures(src, n=2):
    src.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (8, 8), (i, 20, 30)).save(src / f"{i}.png")
    return src


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_writes(tmp_path, gen_file):
    from unlearnable.poison import OutputLock

    src, out = _pictures(tmp_path / "in"), tmp_path / "out"
    out.mkdir()
    with OutputLock(out, (0, 1)):  # the first run, mid-way
        res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file), "--out", str(out)])
        assert res.exit_code == 1 and "being written by another" in res.output and f"pid {os.getpid()}" in res.output
    res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file), "--out", str(out)])
    assert res.exit_code == 0, res.output  # free again once it has finished


def test_made_by_unlearnable_is_decided_by_content(tmp_path, gen_file):
    src, out = _pictures(tmp_path / "in"), tmp_path / "mine"
    out.mkdir()
    (out / "manifest.txt").write_text("my packing list")
    (out / "holiday.png").write_bytes(b"precious")
    res = runner.invoke(app, ["poison", str(src), "--gen", str(gen_file), "--out", str(out)])
    assert res.exit_code == 1 and "not made by unlearnable" in res.output
    assert (out / "holiday.png").read_bytes() == b"precious" and not (out / "0.png").exists()


def test_a_damaged_or_foreign_project_file_is_never_trusted(tmp_path):
    for content, msg in (("{not json", "damaged"), ('{"protected": "/etc", "report": "/tmp/x"}', "unexpected entry"),
                         ('{"made_by": "someone else"}', "not written by unlearnable"),
                         ('{"protected": "relative/path"}', "unexpected entry")):
        (tmp_path / ".unlearnable.json").write_text(content)
        res = runner.invoke(app, ["evaluate"])
        assert res.exit_code == 1 and msg in res.output and "Traceback" not in res.output


def test_decoding_ahead_is_bounded_in_pixels_from_the_first_file(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from unlearnable.poison import pipeline

    src = tmp_path / "big"
    src.mkdir()
    for i in range(6):
        Image.new("RGB", (400, 300), (i, 0, 0)).save(src / f"{i}.png")  # 120,000 pixels each
    items = [(p, p.name) for p in sorted(src.iterdir())]
    started, peak = [], [0]
    real_load = pipeline._Prefetcher._load

    def load(self, path, rel):
        started.append(rel)
        peak[0] = max(peak[0], len(started) - done[0])
        return real_load(self, path, rel)

    done = [0]
    monkeypatch.setattr(pipeline._Prefetcher, "_load", load)
    with ThreadPoolExecutor(4) as pool:
        for _ in pipeline._Prefetcher(pool, items, window=64, pixel_budget=250_000):
            done[0] += 1
    assert len(started) == 6 and peak[0] <= 2  # 250,000 pixels hold two of these, never the window of 64


def test_demo_preview_names_its_columns(tmp_path):
    """preview.png says which column is which: a header with text over each of the three columns."""
    import numpy as np

    from unlearnable.demo import write_preview

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (32, 32), (100, 120, 140)).save(a)
    Image.new("RGB", (32, 32), (108, 112, 140)).save(b)
    write_preview(tmp_path / "preview.png", [a], [b], 8)
    img = np.asarray(Image.open(tmp_path / "preview.png").convert("L"))
    assert img.shape == (32 * 4 + 34, (3 * 32 + 4) * 4)
    header = img[:16]
    thirds = np.array_split(np.arange(img.shape[1]), 3)
    assert all((header[:, cols] < 128).any() for cols in thirds)  # a label over every column
    assert abs(int(img[60, 10]) - 117) <= 1  # below the header, the original itself (luma of 100, 120, 140)
