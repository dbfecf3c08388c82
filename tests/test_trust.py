"""A tool a data owner can trust: each test here failed on the code before its fix."""

import os
import stat
from dataclasses import replace

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from unlearnable.cli.main import app
from unlearnable.io.images import atomic_write_bytes, decode_image
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
    assert res.exit_code == 1 and "is a folder, not a generator file" in res.output


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


def test_progress_in_a_log_prints_lines_with_an_eta(capsys, monkeypatch):
    from unlearnable.cli import common

    now = [0.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    progress = common.LogProgress()
    task = progress.add_task("training", total=100)
    for step in range(1, 101):
        now[0] = step * 1.0  # one step a second
        progress.update(task, completed=step, info=f"step {step}")
        if step % 30 == 0:
            progress.tick()  # what the heartbeat thread does every 30 seconds
    progress.tick()  # finished tasks stay quiet
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert [line.split(":")[1].split()[0] for line in lines] == ["1/100", "30/100", "60/100", "90/100", "100/100"]
    assert "about 1:10 left" in lines[1]  # 30 steps in 30 s, 70 to go
