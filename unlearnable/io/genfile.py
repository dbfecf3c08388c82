"""The protection file (a generator or a source model): safetensors weights plus namespaced string metadata.

Metadata keys (all strings, all prefixed ``unlearnable.``): ``format_version``, ``config``
(the :class:`GeneratorConfig` as JSON), ``eps`` (as the user wrote it, e.g. "8/255"),
``eps_float``, ``image_size``, ``channels``, ``class_names`` (JSON list), ``method``,
``solver``, ``victim``, ``training`` (JSON of the training settings), ``package_version``,
``created``. The model is rebuilt from the file alone; nothing is ever unpickled.

Format 2 adds *source-model files* for the noise methods (REM, EM, TAP): ``method`` is one of
those, ``source`` holds the classifier ({"arch", "num_classes"}) and ``noise`` the per-batch
optimisation `poison` runs with it. Generator files keep format 1, so older versions still
read them; an older version shown a source-model file says to upgrade.

Format 3 adds *keyed generators*: a label-aware generator that carries its key model (the
``keys`` entry of ``config`` and the ``keys.*`` tensors: feature standardisation and cluster
centres), so it protects pictures in any folder layout with no labels.

Format 4 is a keyed generator whose key model also carries each key's centre in an ImageNet
network's features (``push``, ``push_sha256`` and ``push_size`` in ``keys``; the
``keys.push_mean`` and ``keys.push_centres`` tensors), for `poison --push-steps`. An older
version shown one says to upgrade instead of calling its extra tensors damage.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from .. import __version__
from ..budget import Budget
from ..errors import GeneratorFileError, UnlearnableError
from .files import atomic_path
from ..models.keys import ClusterKeys, KeyConfig
from ..models.unet import GeneratorConfig, build_generator
from ..models.victims import VICTIMS, build_victim

FORMAT_VERSION = 5  # the newest format this version reads
GENERATOR_FORMAT = 1
SOURCE_FORMAT = 2
KEYED_FORMAT = 3
PUSH_FORMAT = 4
PATTERN_FORMAT = 5  # one learned pattern per key instead of a U-Net (config.patterns)
PREFIX = "unlearnable."
NOISE_METHODS = ("rem", "em", "tap")


@dataclass(kw_only=True)
class FileInfo:
    """What every protection file says about itself, besides the weights."""

    eps_text: str  # the budget as the user wrote it, e.g. "8/255"
    method: str
    image_size: int = 32
    class_names: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)  # the training settings, as JSON
    package_version: str = __version__
    created: str = ""
    format_version: int = GENERATOR_FORMAT

    @property
    def eps(self) -> float:
        raise NotImplementedError  # each kind of file keeps its budget's value in its own place

    @property
    def budget(self) -> Budget:
        """The file's budget, as written and as a value (``budget.levels``: the 8-bit levels)."""
        return Budget(self.eps_text, self.eps)


@dataclass(kw_only=True)
class GeneratorInfo(FileInfo):
    """A generator file: the U-Net's config, the game that trained it."""

    config: GeneratorConfig
    method: str = "gue"  # gue | gue-at
    solver: str = "bome"
    victim: str = "small-cnn"

    @property
    def eps(self) -> float:
        return self.config.eps

    @property
    def needs_labels(self) -> bool:
        """Label-aware and without a key model: every picture must sit in a class folder."""
        return bool(self.config.num_classes) and self.config.keys is None


@dataclass(kw_only=True)
class SourceModelInfo(FileInfo):
    """A REM/EM/TAP file: a classifier and the noise optimisation to run with it."""

    method: str  # rem | em | tap
    arch: str
    noise: dict  # NoiseSettings as a dict
    format_version: int = SOURCE_FORMAT

    @property
    def eps(self) -> float:
        return float(self.noise["eps"])

    @property
    def needs_labels(self) -> bool:
        return True  # the noise is optimised against the picture's class


def _write(path: Path, module: torch.nn.Module, meta: dict) -> None:
    """Weights and ``unlearnable.*`` metadata, written atomically."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata={PREFIX + k: v for k, v in meta.items()})


def _stamp(info) -> dict:
    return {
        "package_version": __version__,
        "created": info.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def save_source_model(path: Path, model: torch.nn.Module, info: SourceModelInfo) -> None:
    """Write a REM/EM/TAP source model and its noise settings atomically to ``path``."""
    _write(Path(path), model, {
        "format_version": str(SOURCE_FORMAT),
        "method": info.method,
        "source": json.dumps({"arch": info.arch, "num_classes": len(info.class_names)}),
        "noise": json.dumps(info.noise, sort_keys=True),
        "eps": info.eps_text,
        "eps_float": repr(info.eps),
        "image_size": str(info.image_size),
        "class_names": json.dumps(info.class_names),
        "training": json.dumps(info.training, sort_keys=True),
        **_stamp(info),
    })


def _format(config: GeneratorConfig) -> int:
    """The oldest format that holds this generator (an older version refuses a newer one as newer)."""
    keys = config.keys
    if config.patterns:
        return PATTERN_FORMAT
    if keys is None:
        return GENERATOR_FORMAT
    return PUSH_FORMAT if keys.push else KEYED_FORMAT


def save_generator(path: Path, generator: torch.nn.Module, info: GeneratorInfo) -> None:
    """Write weights and metadata atomically to ``path``."""
    path = Path(path)
    meta = {
        "format_version": str(_format(info.config)),
        "config": json.dumps(info.config.to_dict()),
        "eps": info.eps_text,
        "eps_float": repr(float(info.config.eps)),
        "image_size": str(info.image_size),
        "channels": str(info.config.in_channels),
        "class_names": json.dumps(info.class_names),
        "method": info.method,
        "solver": info.solver,
        "victim": info.victim,
        "training": json.dumps(info.training, sort_keys=True),
        **_stamp(info),
    }
    _write(path, generator, meta)


def _names(value) -> list[str]:
    if not isinstance(value, list) or len(value) > 1024 or not all(isinstance(v, str) and 0 < len(v) <= 255 for v in value):
        raise ValueError("class_names must be a list of at most 1024 non-empty names")
    return value


def _noise(value, method: str) -> dict:
    """A source model's noise settings: known numeric fields in range (names checked by the methods)."""
    if not isinstance(value, dict) or value.get("method") != method:
        raise ValueError("noise must be an object for the file's method")
    for name in ("eps", "step_size", "adv_eps"):
        v = value.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1):
            raise ValueError(f"noise.{name} must be a number in [0, 1], not {v!r}")
    if not value.get("eps"):
        raise ValueError("noise.eps must be greater than 0")
    for name, hi in (("steps", 10_000), ("adv_steps", 10_000), ("eot", 100), ("target_shift", 1024)):
        v = value.get(name, 0)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
            raise ValueError(f"noise.{name} must be an integer in 0..{hi}, not {v!r}")
    return value


def _metadata(path: Path) -> dict:
    """The file's ``unlearnable.*`` metadata, prefix removed."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise GeneratorFileError(
            f"{path} is not a readable safetensors file ({exc}); it may be truncated or not a generator"
        ) from None
    return {k[len(PREFIX):]: v for k, v in raw.items() if k.startswith(PREFIX)}


def file_metadata(path: Path) -> dict:
    """The ``unlearnable.*`` metadata of a protection file, after the checks every file passes."""
    path = Path(path)
    if path.is_dir():
        raise GeneratorFileError(f"{path} is a folder, not a protection file; pass the .safetensors file "
                                 "that `unlearnable train-generator` wrote")
    if not path.is_file():
        raise GeneratorFileError(f"protection file {path} does not exist; make one with `unlearnable train-generator`")
    meta = _metadata(path)
    if meta.get("kind") == "keys":
        raise GeneratorFileError(f"{path} is a key-encoder file, not a generator; pass it to "
                                 "`unlearnable train-generator --encoder` and protect with the generator that makes")
    if "format_version" not in meta:
        raise GeneratorFileError(f"{path} is a safetensors file but not an unlearnable protection file")
    return meta


def file_method(path: Path) -> str:
    """The method that wrote a protection file (files before format 2 say nothing: gue)."""
    return file_metadata(path).get("method", "gue")


FILE_METHODS = ("gue", "gue-at", *NOISE_METHODS)  # the `method` values of the files this version runs


def _header(path: Path, meta: dict) -> tuple[int, str]:
    """The file's format version and method, refused when this version cannot read them."""
    if not ("config" in meta or "source" in meta):
        raise GeneratorFileError(f"{path} is a safetensors file but not an unlearnable protection file")
    try:
        version = int(meta["format_version"])
    except ValueError:
        raise GeneratorFileError(f"{path} has a damaged format_version field") from None
    if version > FORMAT_VERSION:
        raise GeneratorFileError(
            f"{path} uses generator format {version}, newer than this tool reads ({FORMAT_VERSION}); "
            "upgrade unlearnable"
        )
    method = meta.get("method", "gue")
    if method not in FILE_METHODS:
        raise GeneratorFileError(
            f"{path} was made by method {method!r}, which this version cannot run "
            f"(it runs {', '.join(FILE_METHODS)}); upgrade unlearnable"
        )
    return version, method


def _shared(meta: dict, version: int) -> dict:
    """The fields every protection file has, checked."""
    image_size = int(meta.get("image_size", 32))
    if not 8 <= image_size <= 4096:
        raise ValueError(f"image_size must be 8..4096, not {image_size}")
    training = json.loads(meta.get("training", "{}"))
    if not isinstance(training, dict):
        raise ValueError("training must be an object")
    return {"image_size": image_size, "class_names": _names(json.loads(meta.get("class_names", "[]"))),
            "training": training, "package_version": meta.get("package_version", ""), "created": meta.get("created", ""),
            "format_version": version}


def _source_info(meta: dict, method: str, shared: dict) -> SourceModelInfo:
    source = json.loads(meta["source"])
    if not isinstance(source, dict) or source.get("arch") not in VICTIMS:
        raise ValueError(f"source.arch must be one of {', '.join(VICTIMS)}")
    if len(shared["class_names"]) < 2:
        raise ValueError("a source model needs at least 2 class names")
    return SourceModelInfo(method=method, arch=source["arch"], noise=_noise(json.loads(meta["noise"]), method),
                           eps_text=meta.get("eps", ""), **shared)


def _generator_info(meta: dict, method: str, shared: dict) -> GeneratorInfo:
    config = GeneratorConfig.from_dict(json.loads(meta["config"]))
    names = shared["class_names"]
    if config.keys is not None and config.keys.clusters != config.num_classes:
        raise ValueError(f"the key model has {config.keys.clusters} keys, the generator {config.num_classes}")
    if names and config.num_classes and len(names) != config.num_classes:
        raise ValueError(f"{len(names)} class names for a generator of {config.num_classes} classes")
    if config.num_classes and config.keys is None and not names:
        raise ValueError("a label-aware generator without a key model needs its class names")
    return GeneratorInfo(config=config, eps_text=meta.get("eps", repr(config.eps)), method=method,
                         solver=meta.get("solver", "bome"), victim=meta.get("victim", ""), **shared)


def read_info(path: Path) -> GeneratorInfo | SourceModelInfo:
    """Read and validate only the metadata of a generator or source-model file."""
    meta = file_metadata(path)
    version, method = _header(path, meta)
    try:
        shared = _shared(meta, version)
        return (_source_info if "source" in meta else _generator_info)(meta, method, shared)
    except (ValueError, TypeError, KeyError) as exc:
        raise GeneratorFileError(f"{path} has damaged metadata ({exc})") from None


def load_generator(path: Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, GeneratorInfo | SourceModelInfo]:
    """Rebuild the model from the file alone, in eval mode, on ``device``.

    A generator file gives the U-Net; a source-model file gives the classifier, which
    :func:`unlearnable.methods.load_protector` wraps with its noise optimisation.
    """
    info = read_info(path)
    if not (0 < info.eps <= 1):
        raise GeneratorFileError(f"{path} has an invalid eps {info.eps}")
    try:
        if isinstance(info, SourceModelInfo):
            generator = build_victim(info.arch, len(info.class_names))
        else:
            generator = build_generator(info.config)
    except (ValueError, TypeError, RuntimeError, KeyError, UnlearnableError) as exc:
        raise GeneratorFileError(f"{path} has an architecture config this tool cannot build ({exc})") from None
    _load_weights(path, generator)
    return generator.to(device).eval(), info


def _load_weights(path: Path, module: torch.nn.Module, prefix: str = "") -> None:
    """Fill ``module`` from the file's tensors under ``prefix``: names, shapes and values checked."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise GeneratorFileError(f"{path} could not be read ({exc}); it may be truncated") from None
    if prefix:
        tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise GeneratorFileError(
            f"{path} does not match its own config (missing {missing[:3]}, unexpected {extra[:3]}); "
            "the file was tampered with or damaged"
        )
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise GeneratorFileError(
                f"{path}: tensor {prefix}{name} has shape {tuple(tensor.shape)}, config needs "
                f"{tuple(expected[name].shape)}; the file was tampered with or damaged"
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise GeneratorFileError(f"{path}: tensor {prefix}{name} holds NaN or infinite values")
    module.load_state_dict(tensors)


def save_keys(path: Path, keys: ClusterKeys, training: dict, class_names: list[str]) -> None:
    """A key-encoder file (`unlearnable train-encoder`): a key model and nothing else."""
    _write(Path(path), keys, {
        "format_version": str(KEYED_FORMAT),
        "kind": "keys",
        "keys": json.dumps(keys.config.to_dict()),
        "class_names": json.dumps(class_names),
        "training": json.dumps(training, sort_keys=True),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "package_version": __version__,
    })


def load_keys(path: Path, device: torch.device | str = "cpu") -> ClusterKeys:
    """The key model of a key-encoder file or of a keyed generator file (validated)."""
    path = Path(path)
    if not path.is_file():
        raise GeneratorFileError(f"encoder file {path} does not exist; make one with `unlearnable train-encoder`")
    raw = _metadata(path)
    try:
        if raw.get("kind") == "keys":
            config, prefix = KeyConfig.from_dict(json.loads(raw["keys"])), ""
        elif "config" in raw:
            gen = json.loads(raw["config"])
            if not isinstance(gen, dict) or gen.get("keys") is None:
                raise GeneratorFileError(f"{path} is a generator without a key model; pass an encoder file")
            config, prefix = KeyConfig.from_dict(gen["keys"]), "keys."
        else:
            raise GeneratorFileError(f"{path} holds no key model; make one with `unlearnable train-encoder`")
    except (ValueError, TypeError, KeyError) as exc:
        raise GeneratorFileError(f"{path} has damaged metadata ({exc})") from None
    keys = ClusterKeys(config)
    _load_weights(path, keys, prefix)
    return keys.to(device).eval()
