"""Two CPU processes under torchrun: train-generator and evaluate split the work and agree."""

import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from unlearnable.distributed import SINGLE, Context
from unlearnable.synthetic import make_synthetic_folder


def _torchrun(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "unlearnable", *args, "--json"]
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout)  # exactly one JSON object: only rank 0 reports


def test_two_process_training_is_reproducible_and_makes_a_working_generator(tmp_path):
    make_synthetic_folder(tmp_path / "data", num_classes=2, per_class=12, size=16)
    common = ["train-generator", "data", "--warmup-epochs", "1", "--epochs", "1", "--batch-size", "8", "--image-size", "16"]
    first = _torchrun(*common, "--out", "a.safetensors", cwd=tmp_path)
    _torchrun(*common, "--out", "b.safetensors", cwd=tmp_path)
    assert first["steps"] == 6  # 24 pictures, global batch 8, 2 epochs: each process took 4 a step
    a, b = load_file(str(tmp_path / "a.safetensors")), load_file(str(tmp_path / "b.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    poisoned = subprocess.run([sys.executable, "-m", "unlearnable", "poison", "data", "--gen", "a.safetensors",
                               "--out", "prot", "--json"], cwd=tmp_path, capture_output=True, text=True)
    assert poisoned.returncode == 0 and json.loads(poisoned.stdout)["protected"] == 24
    evaluated = _torchrun("evaluate", "prot", "--test", "data", "--epochs", "1", "--image-size", "16", cwd=tmp_path)
    assert 0 <= evaluated["accuracy"] <= 1 and evaluated["train_images"] == 24


def test_context_shards_and_is_a_no_op_alone():
    idx = torch.arange(10)
    assert torch.equal(Context(1, 3).shard(idx), torch.tensor([1, 4, 7]))
    t = [torch.ones(2)]
    assert SINGLE.mean_(t)[0].tolist() == [1.0, 1.0] and SINGLE.shard(idx) is idx
