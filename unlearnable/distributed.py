"""Data parallelism on PyTorch's own distributed engine, for runs under ``torchrun``.

    torchrun --nproc_per_node 2 -m unlearnable train-generator photos --out gen.safetensors

Every process reads the same folder and starts from the same seeded weights; each takes its
share of every global batch (rank, rank + world, ...), and gradients are averaged with an
all-reduce (gloo on CPU, nccl on GPUs) before each optimizer step. This is what
``DistributedDataParallel`` does; we all-reduce explicitly because the game's solvers set
gradients by hand (BOME's lambda-weighted combination, TGDA's total derivative), which DDP's
backward hooks never see. Only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This process's share of a global batch of indices."""
        return idx[self.rank::self.world] if self.active else idx

    def mean_(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """Average tensors across processes, in place (one flat all-reduce); returns them."""
        if not self.active or not tensors:
            return tensors
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()
        return tensors

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


SINGLE = Context()


def from_env(device: torch.device) -> Context:
    """Join the process group torchrun describes (RANK, WORLD_SIZE); a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Context(dist.get_rank(), dist.get_world_size())


def local_device(device: torch.device) -> torch.device:
    """Under torchrun on GPUs, each process takes the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        index = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


class SyncedOptimizer:
    """Wraps an optimizer so that ``step()`` first averages its parameters' gradients."""

    def __init__(self, opt: torch.optim.Optimizer, ctx: Context):
        self.opt, self.ctx = opt, ctx

    def step(self) -> None:
        if self.ctx.active:
            params = [p for g in self.opt.param_groups for p in g["params"]]
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            self.ctx.mean_([p.grad for p in params])
        self.opt.step()

    def __getattr__(self, name):
        return getattr(self.opt, name)
