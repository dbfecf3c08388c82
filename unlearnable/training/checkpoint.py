"""Resumable training state in safetensors (weights, optimizer tensors, RNG), never pickle."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import UnlearnableError
from ..io.files import atomic_path


def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    sd = opt.state_dict()
    scalars = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.state.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    meta[f"{prefix}.param_groups"] = json.dumps(sd["param_groups"])
    meta[f"{prefix}.scalars"] = json.dumps(scalars)


def _restore_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + ".state."):
            idx, key = name[len(prefix) + 7:].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for name, value in json.loads(meta[f"{prefix}.scalars"]).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta[f"{prefix}.param_groups"])})


def save_checkpoint(path: Path, modules: dict, optimizers: dict, progress: dict) -> None:
    """Atomically write modules' weights, optimizers' state, the torch RNG and ``progress``."""
    tensors, meta = {}, {"progress": json.dumps(progress)}
    for name, module in modules.items():
        for k, v in module.state_dict().items():
            tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
    for name, opt in optimizers.items():
        _flatten_optimizer(f"opt_{name}", opt, tensors, meta)
    tensors["rng.torch"] = torch.get_rng_state()
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def load_checkpoint(path: Path, modules: dict, optimizers: dict, device: torch.device) -> dict:
    """Restore what :func:`save_checkpoint` wrote; returns its ``progress`` dict."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for damaged files
        raise UnlearnableError(f"checkpoint {path} is damaged ({exc}); delete it to start over") from None
    for name, module in modules.items():
        sd = {k[len(name) + 1:]: v.to(device) for k, v in tensors.items() if k.startswith(name + ".")}
        try:
            module.load_state_dict(sd)
        except RuntimeError:
            raise UnlearnableError(
                f"checkpoint {path} was made with different settings; delete it or rerun with the same options"
            ) from None
    for name, opt in optimizers.items():
        _restore_optimizer(f"opt_{name}", opt, {k: v.to(device) for k, v in tensors.items()}, meta)
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads(meta["progress"])
