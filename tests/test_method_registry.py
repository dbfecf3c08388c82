"""A method defined here, in a test file, runs through train-generator and poison untouched."""

import json
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from unlearnable.cli.main import app
from unlearnable.data import load_pictures
from unlearnable.methods import METHODS, Method, TrainReport, register
from unlearnable.methods.base import COMMON_OPTIONS

runner = CliRunner()


@dataclass
class StripesInfo:
    eps: float
    eps_text: str
    image_size: int = 32
    class_names: list = field(default_factory=list)
    needs_labels: bool = False


class Stripes(torch.nn.Module):
    def __init__(self, pattern: torch.Tensor):
        super().__init__()
        self.register_buffer("pattern", pattern)

    def forward(self, x, y):
        return self.pattern[:, : x.shape[2], : x.shape[3]].expand_as(x)


class StripesMethod(Method):
    """Vertical stripes of +-eps whose phase is the folder's mean brightness (a toy method)."""

    name = "stripes"
    summary = "a test method"
    options = frozenset({"epochs"})
    written = "stripes file"

    def settings(self, preset, budget, image_size, seed, given):
        self.check_options(given)
        self.check_preset(preset)
        return {"eps": budget.value, "eps_text": budget.text, "size": image_size, "width": given.get("epochs", 2)}

    def train(self, data_dir, out, settings, device, *, resume=False, ctx=None, on_load=None, on_progress=None):
        data = load_pictures(data_dir, settings["size"], "none", on_progress=on_load)
        phase = int(data.x.float().mean() > 127)
        cols = (torch.arange(4096) // settings["width"] + phase) % 2 * 2 - 1
        pattern = (cols.float() * settings["eps"]).expand(3, 4096, 4096).contiguous()
        save_file({"pattern": pattern[:, :64, :64].contiguous()}, str(out), metadata={
            "unlearnable.format_version": "1", "unlearnable.method": "stripes", "unlearnable.eps": settings["eps_text"],
            "unlearnable.eps_float": repr(settings["eps"])})
        if on_progress:
            on_progress(1, 1, "done")
        return TrainReport(output=str(out), images=len(data), skipped=len(data.skipped), seconds=0.0,
                           table={"phase": str(phase)})

    def load(self, path, device="cpu"):
        meta = __import__("unlearnable.io.genfile", fromlist=["file_metadata"]).file_metadata(path)
        return Stripes(load_file(str(path))["pattern"]).to(device), StripesInfo(float(meta["eps_float"]), meta["eps"])


def test_a_registered_method_trains_and_protects_through_the_cli(tmp_path):
    register(StripesMethod())
    try:
        photos = tmp_path / "photos"
        photos.mkdir()
        for i in range(4):
            Image.new("RGB", (40, 32), (200, 200 - 10 * i, 190)).save(photos / f"{i}.png")
        res = runner.invoke(app, ["train-generator", str(photos), "--method", "stripes", "--out", str(tmp_path / "s.safetensors"), "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["images"] == 4 and "protection file (stripes file) written" in " ".join(res.stderr.split())
        res = runner.invoke(app, ["poison", str(photos), "--gen", str(tmp_path / "s.safetensors"), "--out", str(tmp_path / "out"), "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["protected"] == 4
        orig = torch.from_numpy(np.array(Image.open(photos / "0.png"))).int()
        prot = torch.from_numpy(np.array(Image.open(tmp_path / "out" / "0.png"))).int()
        assert (prot - orig).abs().max() == 8  # the stripes, at the full budget
        # a flag the method does not declare is refused, naming it (exit 2, like a usage error)
        res = runner.invoke(app, ["train-generator", str(photos), "--method", "stripes", "--solver", "tgda"])
        assert res.exit_code == 2 and "--method stripes does not use --solver" in res.output
    finally:
        METHODS.pop("stripes", None)


def test_the_registry_lists_every_method_once():
    assert list(METHODS) == ["gue", "rem", "em", "tap"]
    shown = " ".join(runner.invoke(app, ["train-generator", "--help"]).output.split())
    assert all(f"{m.name}: " in shown for m in METHODS.values())
    assert COMMON_OPTIONS == {"fraction", "max_images"}
