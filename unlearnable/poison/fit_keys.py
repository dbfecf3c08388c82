"""Keys fitted to the folder being protected: the file's K-means centres found again in its pictures.

A keyed generator plants one pattern per key, and a key protects a trainer's class only as
far as the pictures that share it share a class. The built-in generator's centres were fitted
on pictures that are not the owner's; in the owner's own pictures many of them fall into a few
keys. Fitting K-means again on the folder being protected (the same encoder, the same K, the
features centred on this folder as `train-generator` centres them) gives keys that follow this
folder's content. Each new cluster takes the file's key that most of its pictures had already,
so the generator plants each pattern on pictures like the ones it was trained on.

`poison --fit-keys auto` (the default) fits the built-in generator's keys, whose centres come
from small CIFAR-10 pictures, to any folder with at least ``PER_KEY`` pictures a key, and keeps a
file's own keys otherwise: a file trained on the owner's pictures already has keys that follow
them, and keeping them gives later uploads the same keys. On CIFAR-10's classes 5-9, near the
pictures the built-in generator was trained on, the fitted keys protected as much as its own;
on pictures far from them its own keys fall into one or two keys and protect little, fitted
ones protect far more (docs/label-free.md, "Keys fitted to the folder being protected").
`yes` fits any file's cluster keys and refuses a folder too small; `no` never fits.

The fitted file is the original generator with new centres, written into the output folder:
an interrupted run and a later run into the same folder use it again, and later uploads get
the same keys with ``--gen OUT/keys-fitted.safetensors``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from ..errors import ConfigError, DataError
from ..io.codec import decode_image
from ..io.files import sha256_file
from ..io.genfile import GeneratorFileError, load_generator, read_info, save_generator
from ..game.push import PUSH_NETWORK, PUSH_SIZE, clean_features, push_centres
from ..models.keys import kmeans
from ..models.pretrained import load_encoder
from ..resize import fit_center

FITTED = "keys-fitted.safetensors"  # in the output folder
CHUNK = 64  # pictures decoded at a time
PER_KEY = 20  # pictures per key, at least, before keys are fitted to a folder
OnProgress = Callable[[int, int], None]


@dataclass
class FitReport:
    path: Path  # the fitted generator file
    pictures: int  # pictures the centres were fitted on
    reused: bool  # found in the output folder from an earlier run


def fittable(info) -> bool:
    """A generator whose keys are K-means centres (not class means, not an image-only generator)."""
    keys = getattr(getattr(info, "config", None), "keys", None)
    return keys is not None and keys.source == "kmeans"


def should_fit(choice: str, info, pictures: int, built_in: bool = False) -> bool:
    """Whether `poison --fit-keys CHOICE` fits this file's keys to a folder of ``pictures`` pictures.

    ``yes`` needs a file with cluster keys and at least ``PER_KEY`` pictures a key, and refuses
    otherwise; ``auto`` fits only the ``built_in`` generator, where it can, and never refuses.
    """
    if choice == "auto":
        return built_in and fittable(info) and pictures >= PER_KEY * info.config.keys.clusters
    if choice != "yes":
        return False
    if not fittable(info):
        raise ConfigError("--fit-keys yes needs a generator with cluster keys (from `train-generator` without "
                          "--keys folders); this file has none to fit")
    need = PER_KEY * info.config.keys.clusters
    if pictures < need:
        raise DataError(f"--fit-keys needs at least {need} pictures ({PER_KEY} a key) and the folder has "
                        f"{pictures}; protect it with the file's own keys (leave out --fit-keys)")
    return True


def _fitted_from(path: Path) -> str | None:
    try:
        return read_info(path).training.get("keys_fitted_from")
    except GeneratorFileError:
        return None


def _features(keys, files: list[Path], device, workers: int, on_progress: OnProgress | None,
              push: tuple[str, int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The key model's raw features of every readable picture (undecodable ones are left out).

    ``push`` = (network, size, work size): also each picture's pooled features in that network,
    seen as `poison` sees it: at the generator's work size, enlarged to ``size`` (game/push.py).
    """
    size = keys.config.image_size
    out, pushed, done = [], [], 0
    encoder = load_encoder(push[0], device) if push else None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(files), CHUNK):
            chunk = files[start:start + CHUNK]
            small = [x for x in pool.map(lambda p: _small(p, size), chunk) if x is not None]
            if small:
                batch = torch.cat(small).to(device)
                out.append(keys.raw_features(batch))
                if encoder is not None:
                    pushed.append(clean_features(encoder, fit_center(batch, push[2]), push[1]))
            done += len(chunk)
            if on_progress:
                on_progress(done, len(files))
    raw = torch.cat(out) if out else torch.empty(0, keys.config.dims, device=device)
    return raw, (torch.cat(pushed) if pushed else None)


def _small(path: Path, size: int) -> torch.Tensor | None:
    """One picture as the key model sees it, (1, 3, size, size) in [0, 1], decoded no larger than needed."""
    try:
        rgb = decode_image(path, at_least=size).rgb
    except DataError:
        return None  # the protection run names it as skipped
    return fit_center(rgb.permute(2, 0, 1)[None].float().div_(255), size)


def _match(new: torch.Tensor, old: torch.Tensor, k: int) -> list[int]:
    """For each new cluster the file's key its pictures most often had: greedy on the overlap counts."""
    counts = torch.zeros(k, k, dtype=torch.long)
    counts.index_put_((new.cpu(), old.cpu()), torch.ones(len(new), dtype=torch.long), accumulate=True)
    order, free_new, free_old = [0] * k, set(range(k)), set(range(k))
    flat = sorted(((int(counts[i, j]), -i, -j) for i in range(k) for j in range(k)), reverse=True)
    for _, ni, nj in flat:
        i, j = -ni, -nj
        if i in free_new and j in free_old:
            order[i] = j
            free_new.discard(i)
            free_old.discard(j)
    return order


@torch.no_grad()
def fit_keys(files: list[Path], gen_path: Path, out_dir: Path, device, workers: int = 2,
             on_progress: OnProgress | None = None, base_sha: str | None = None, push: bool = False) -> FitReport:
    """The generator of ``gen_path`` with its centres fitted to ``files``, written to ``out_dir``.

    A fitted file already in ``out_dir`` made from the same generator is used again as it is.
    ``base_sha``: the SHA-256 of ``gen_path`` where the caller has it already. ``push``: a file
    without each key's centre in the push network's features (`poison --push-steps`) gets them
    from the same pictures, in the same pass.
    """
    base_sha = base_sha or sha256_file(gen_path)
    path = Path(out_dir) / FITTED
    if path.is_file() and _fitted_from(path) == base_sha:
        return FitReport(path, int(read_info(path).training.get("keys_fitted_pictures", 0)), reused=True)
    gen, info = load_generator(gen_path, device)
    keys = gen.keys
    network = PUSH_NETWORK if push and keys.config.push is None else None
    raw, pushed = _features(keys, files, device, workers, on_progress,
                            (network, PUSH_SIZE, info.image_size) if network else None)
    k = keys.config.clusters
    if len(raw) < PER_KEY * k:
        raise DataError(f"only {len(raw)} of the pictures could be read, fewer than {PER_KEY * k} ({PER_KEY} a key) "
                        "to fit keys on; protect with the file's own keys (--fit-keys no)")
    old = torch.cdist(keys._normalise(raw), keys.centres).argmin(1)  # the keys the file gives them
    f = keys.standardise(raw)  # centred on this folder, as train-generator centres the owner's
    centres = kmeans(f, k, seed=0)
    new = torch.cdist(f, centres).argmin(1)
    order = _match(new, old, k)
    placed = torch.empty_like(centres)
    placed[order] = centres
    keys.centres.copy_(placed)
    if pushed is not None:  # each picture's key is now the file's key its cluster was placed at
        mean, centres = push_centres(pushed, torch.tensor(order, device=new.device)[new], k)
        gen.keys = keys.with_push(network, PUSH_SIZE, mean, centres)
        gen.config = replace(gen.config, keys=gen.keys.config)
        info = replace(info, config=gen.config)
    training = {**info.training, "keys_fitted_from": base_sha, "keys_fitted_pictures": len(raw)}
    save_generator(path, gen, replace(info, training=training, created=""))
    return FitReport(path, len(raw), reused=False)


def kept_reason(info, pictures: int) -> str:
    """Why `--fit-keys auto` kept the built-in generator's own keys on a folder of ``pictures``."""
    need = PER_KEY * info.config.keys.clusters
    return (f"kept the built-in generator's own keys: {pictures} pictures are fewer than the {need} needed to fit "
            "keys to this folder; they may fall into few keys and protect less (protect more pictures at once)")


def describe(result) -> str:
    """One line on a :class:`PoisonResult` whose keys were fitted."""
    where = "found in the output folder from an earlier run" if result.fitted_reused else "written to"
    return (f"keys fitted to {result.fitted_pictures} pictures of this folder ({where} {result.fitted_keys}); "
            f"protect later uploads with --gen {result.fitted_keys} so that they get the same keys")


__all__ = ["FITTED", "FitReport", "PER_KEY", "describe", "fit_keys", "fittable", "kept_reason", "should_fit"]
