"""What `poison` is asked to do (:class:`PoisonConfig`) and what it reports (:class:`PoisonResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SUFFIX = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
FIT_CHOICES = ("auto", "yes", "no")  # poison --fit-keys
AMPLITUDES = ("full", "generator")  # poison --amplitude
MAX_PUSH_STEPS = 100  # poison --push-steps: each step costs a forward and a backward pass of an ImageNet network


@dataclass(frozen=True)
class PoisonConfig:
    batch_size: int = 64  # images per forward pass
    fmt: str = "png"  # png (lossless, default) | jpeg | webp (lossy: weakens protection)
    quality: int = 95  # JPEG/WebP quality 1-100, lossy formats only
    strict: bool = False  # a damaged input file stops the run instead of being skipped
    tile: int = 512  # pictures larger than tile x tile pixels are processed in tiles
    tile_overlap: int = 64  # pixels of overlap between tiles, blended linearly
    pixel_budget: int = 8_000_000  # pixels per forward batch, and roughly in flight: bounds memory
    workers: int = 0  # decode/encode threads; 0 = up to 8, one per CPU core
    shard: tuple[int, int] = (0, 1)  # (k, n): protect only every n-th picture from the k-th
    # compute the perturbation with the shorter side at this many pixels and upsample it:
    # "auto" = the generator's training size (docs/scaling.md, "Resolution policy"), 0 = full resolution
    work_size: int | str = "auto"
    # carry each picture's colour profile, EXIF (orientation applied, thumbnail dropped) and XMP
    metadata: bool = True
    # yes: the file's K-means keys are fitted again to the folder first (fit_keys.py); no: kept;
    # auto: fitted for the built-in generator where the folder has enough pictures, else kept
    fit_keys: str = "auto"
    # generator: the amplitudes the generator gave; full: every value of the computed perturbation
    # taken to the whole budget, in its direction (more protection on small folders, measured;
    # not at full size: docs/label-free.md, "The whole budget")
    amplitude: str = "generator"
    # > 0: after the generator, this many signed gradient steps per picture that move its features
    # in an ImageNet network towards the next key's (game/push.py; the file must carry the centres)
    push_steps: int = 0

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        if self.fmt not in SUFFIX:
            raise ConfigError(f"unknown --format {self.fmt!r}; use png, jpeg or webp")
        if self.fit_keys not in FIT_CHOICES:
            raise ConfigError(f"--fit-keys must be auto, yes or no, not {self.fit_keys!r}")
        if self.amplitude not in AMPLITUDES:
            raise ConfigError(f"--amplitude must be {' or '.join(AMPLITUDES)}, not {self.amplitude!r}")
        if not isinstance(self.push_steps, int) or not 0 <= self.push_steps <= MAX_PUSH_STEPS:
            raise ConfigError(f"--push-steps must be a whole number from 0 to {MAX_PUSH_STEPS}, not {self.push_steps!r}")
        if self.work_size not in ("auto", "full"):
            try:
                size = int(self.work_size)
            except (TypeError, ValueError):
                size = -1
            if size != 0 and size < 8:
                raise ConfigError(f"--work-size must be auto, full or a number of pixels >= 8, not {self.work_size!r}")


@dataclass
class PoisonResult:
    input_dir: str
    output_dir: str
    manifest: str
    files: int = 0
    protected: int = 0
    already_done: int = 0
    skipped: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    images_per_s: float = 0.0
    work_size: int = 0  # the shorter side the perturbation was computed at (0: full resolution)
    max_change_levels: int = 0
    budget_levels: int = 0
    mean_psnr: float | None = None
    format: str = "png"
    shard: str = "0/1"
    fitted_keys: str | None = None  # the generator file with keys fitted to this folder, if one was used
    fitted_pictures: int = 0  # pictures its keys were fitted on
    fitted_reused: bool = False  # found in the output folder, from an earlier run
    keys_kept: str = ""  # --fit-keys auto left the file's own keys for this reason ("" otherwise)
    merged: bool = False  # a shard that completed the set wrote the merged manifest.json

    def to_dict(self) -> dict:
        return asdict(self)

