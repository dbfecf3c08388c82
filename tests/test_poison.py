import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from unlearnable.cli.main import app

from unlearnable.errors import ConfigError, DataError, GeneratorFileError
from unlearnable.io.codec import decode_image
from unlearnable.poison import PoisonConfig, apply_budget, perturbation, protect_folder

from .conftest import make_generator

runner = CliRunner()


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def mixed(tmp_path):
    root = tmp_path / "photos"
    (root / "trip" / "day1").mkdir(parents=True)
    g = torch.Generator().manual_seed(0)

    def noise(w, h):
        return Image.frombytes("RGB", (w, h), torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy().tobytes())

    noise(40, 30).save(root / "a.jpg", quality=90)
    noise(33, 17).save(root / "trip" / "b.png")
    noise(32, 32).convert("RGBA").save(root / "trip" / "day1" / "alpha.png")
    noise(32, 32).convert("L").save(root / "gray.webp", lossless=True)
    noise(20, 20).convert("CMYK").save(root / "cmyk.tiff")
    (root / "empty.png").write_bytes(b"")
    (root / "text.jpg").write_bytes(b"not an image at all")
    full = root / "trip" / "b.png"
    (root / "cut.png").write_bytes(full.read_bytes()[:200])
    return root


def test_protects_mixed_folder_within_budget(tmp_path, mixed, gen_file):
    before = _digest(mixed)
    skipped = []
    result = protect_folder(mixed, gen_file, tmp_path / "out", PoisonConfig(batch_size=2), on_skip=skipped.append)
    assert _digest(mixed) == before  # originals untouched, byte for byte
    assert result.protected == 5 and len(result.skipped) == 3
    assert sorted(s.path for s in skipped) == ["cut.png", "empty.png", "text.jpg"]
    assert all(s.reason for s in skipped)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["files"]) == 5
    for entry in manifest["files"]:
        orig = decode_image(mixed / entry["source"])
        prot = decode_image(tmp_path / "out" / entry["output"])
        change = (prot.rgb.int() - orig.rgb.int()).abs().max().item()
        assert change <= 8 and change == entry["max_change_levels"]
        assert (orig.alpha is None) == (prot.alpha is None)
        if orig.alpha is not None:
            assert torch.equal(orig.alpha, prot.alpha)
    # the random generator saturates tanh, so the full budget is used in both directions
    assert result.max_change_levels == 8
    assert (tmp_path / "out" / "trip" / "day1" / "alpha.png").exists()
    assert not (tmp_path / "out" / "manifest.partial.jsonl").exists()


def test_rounding_not_truncation():
    orig = torch.full((1, 1, 3), 100, dtype=torch.uint8)
    delta = torch.full((3, 1, 1), -0.6 / 255)
    assert apply_budget(orig, delta, 8).unique().tolist() == [99]
    delta = torch.full((3, 1, 1), 20 / 255)
    assert apply_budget(orig, delta, 8).unique().tolist() == [108]


@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_refuses_output_near_input(tmp_path, mixed, gen_file, where):
    out = {"same": mixed, "inside": mixed / "out", "parent": tmp_path}[where]
    with pytest.raises(DataError, match="input folder"):
        protect_folder(mixed, gen_file, out)


def test_refuses_foreign_nonempty_output(tmp_path, mixed, gen_file):
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "keep.txt").write_text("precious")
    with pytest.raises(DataError, match="not empty"):
        protect_folder(mixed, gen_file, tmp_path / "theirs")


def test_empty_folder_and_bad_generator(tmp_path, gen_file):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no pictures found"):
        protect_folder(tmp_path / "empty", gen_file)
    (tmp_path / "one").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "one" / "x.png")
    with pytest.raises(GeneratorFileError, match="does not exist"):
        protect_folder(tmp_path / "one", tmp_path / "missing.safetensors")


def test_interrupted_run_resumes_without_redoing(tmp_path, mixed, gen_file):
    out = tmp_path / "out"

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        protect_folder(mixed, gen_file, out, PoisonConfig(batch_size=3), on_progress=stop)
    first = {p.name: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    assert 0 < len(first) < 5
    result = protect_folder(mixed, gen_file, out, PoisonConfig(batch_size=3))
    assert result.already_done == len(first) and result.protected == 5 - len(first)
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*.png") if p.name in first} == first
    again = protect_folder(mixed, gen_file, out)
    assert again.protected == 0 and again.already_done == 5


def test_resume_with_other_generator_is_refused(tmp_path, mixed, gen_file):
    protect_folder(mixed, gen_file, tmp_path / "out")
    other = make_generator(tmp_path / "other.safetensors", seed=1)
    with pytest.raises(DataError, match="different run"):
        protect_folder(mixed, other, tmp_path / "out")


def test_label_aware_generator_needs_class_folders(tmp_path, mixed):
    gen = make_generator(tmp_path / "la.safetensors", num_classes=2, class_names=["cat", "dog"])
    with pytest.raises(DataError, match="label-aware"):
        protect_folder(mixed, gen, tmp_path / "out")
    root = tmp_path / "labelled"
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        Image.new("RGB", (16, 16), (50, 60, 70)).save(root / c / "1.png")
    assert protect_folder(root, gen, tmp_path / "out2").protected == 2


def test_tiles_keep_the_bound_and_have_no_seams(tmp_path, gen_file):
    from unlearnable.io.genfile import load_generator

    gen, _ = load_generator(gen_file)
    x = torch.rand(1, 3, 150, 170)
    tiled = perturbation(gen, x, None, tile=64, overlap=16)
    assert tiled.shape == x.shape and tiled.abs().max() <= 8 / 255 + 1e-7
    whole = perturbation(gen, x, None, tile=512, overlap=16)
    # away from tile borders the network sees the same neighbourhood: tiled equals untiled
    assert (tiled - whole).abs().mean() < 0.25 * whole.abs().mean()


def test_shards_split_the_folder_and_merge_one_manifest(tmp_path, gen_file):
    from unlearnable.synthetic import make_synthetic_folder

    make_synthetic_folder(tmp_path / "in", num_classes=2, per_class=5, size=12)
    out = tmp_path / "out"
    first = protect_folder(tmp_path / "in", gen_file, out, PoisonConfig(batch_size=2, shard=(0, 2)))
    assert first.protected == 5 and not first.merged and not (out / "manifest.json").exists()
    second = protect_folder(tmp_path / "in", gen_file, out, PoisonConfig(batch_size=2, shard=(1, 2)))
    assert second.protected == 5 and second.merged
    manifest = json.loads((out / "manifest.json").read_text())
    assert len({e["source"] for e in manifest["files"]}) == 10 and len(list(out.rglob("*.png"))) == 10
    assert not list(out.glob("manifest.*shard*"))
    again = protect_folder(tmp_path / "in", gen_file, out)  # the merged manifest counts as done
    assert again.already_done == 10 and again.protected == 0


def test_shard_comes_from_torchrun_and_bad_shards_are_refused(monkeypatch):
    from unlearnable.poison import parse_shard

    assert parse_shard(None) == (0, 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert parse_shard(None) == (1, 3) and parse_shard("0/2") == (0, 2)
    for bad in ("2/2", "a/b", "1", "-1/2"):
        with pytest.raises(DataError, match="--shard"):
            parse_shard(bad)


def test_streaming_is_deterministic_whatever_the_threads_and_memory_budget(tmp_path, gen_file):
    from unlearnable.synthetic import make_synthetic_folder

    make_synthetic_folder(tmp_path / "in", num_classes=2, per_class=6, size=16)
    a = protect_folder(tmp_path / "in", gen_file, tmp_path / "a", PoisonConfig(batch_size=4, workers=1))
    b = protect_folder(tmp_path / "in", gen_file, tmp_path / "b", PoisonConfig(batch_size=4, workers=4, pixel_budget=600))
    assert a.protected == b.protected == 12
    for f in (tmp_path / "a").rglob("*.png"):
        assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes()


def test_work_size_upsamples_a_low_resolution_perturbation_within_budget(tmp_path, gen_file):
    from unlearnable.io.genfile import load_generator
    from unlearnable.poison import perturb_at

    gen, _ = load_generator(gen_file)
    x = torch.rand(2, 3, 64, 96)
    as_made = PoisonConfig(amplitude="generator")  # the geometry of upsampling, on the generator's own values
    delta = perturb_at(gen, x, [None, None], as_made, 16, 8 / 255)
    assert delta.shape == x.shape and delta.abs().max() <= 8 / 255 + 1e-6
    # smooth at the working scale: neighbouring pixels differ far less than at full resolution
    full = perturb_at(gen, x, [None, None], as_made, 0, 8 / 255)
    assert (delta.diff(dim=3).abs().mean() < 0.5 * full.diff(dim=3).abs().mean())
    Image.fromarray((x[0].permute(1, 2, 0) * 255).byte().numpy()).save(tmp_path / "big.png")
    res = protect_folder(tmp_path, gen_file, tmp_path.parent / "out-ws", PoisonConfig(work_size=16))
    assert res.protected == 1 and res.max_change_levels <= 8 and res.work_size == 16


def test_work_size_defaults_to_the_generators_training_size_and_resume_keeps_it(tmp_path, gen_file):
    from unlearnable.io.genfile import load_generator
    from unlearnable.poison import resolve_work_size

    _, info = load_generator(gen_file)
    assert resolve_work_size("auto", info.image_size) == info.image_size
    assert resolve_work_size("full", 32) == 0 and resolve_work_size("48", 32) == 48
    for bad in ("4", "big", "-1"):
        with pytest.raises(ConfigError, match="--work-size must be auto, full"):
            PoisonConfig(work_size=bad)
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray((torch.rand(64, 96, 3) * 255).byte().numpy()).save(src / "big.png")
    res = protect_folder(src, gen_file, tmp_path / "out")
    assert res.work_size == info.image_size
    # an output folder made at one working size is not continued at another
    with pytest.raises(DataError, match=f"protected with --work-size {info.image_size}; add --work-size {info.image_size}"):
        protect_folder(src, gen_file, tmp_path / "out", PoisonConfig(work_size="full"))


def test_tiles_leave_no_seams():
    """Tiled inference matches one pass over the whole picture, at tile borders as inside."""
    from unlearnable.models.unet import GENERATOR_PRESETS, GeneratorConfig, UNetGenerator

    torch.manual_seed(0)
    gen = UNetGenerator(GeneratorConfig(channels=GENERATOR_PRESETS["small"], eps=8 / 255)).eval()
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 192), torch.linspace(0, 1, 320), indexing="ij")
    x = (torch.stack([xx, yy, xx * yy])[None] + 0.05 * torch.randn(1, 3, 192, 320)).clamp(0, 1)
    tiled = perturbation(gen, x, None, tile=128, overlap=48)
    with torch.no_grad():
        whole = gen(x, None)
    assert (tiled - whole).abs().max() * 255 < 0.05  # well under one 8-bit level
    border = torch.zeros(320, dtype=torch.bool)
    for start in (80, 160, 192):  # tile starts at stride 80 (and the last tile at 320 - 128)
        border[start:start + 48] = True
    mag = tiled[0].abs().mean(0)
    assert abs(mag[:, border].mean() / mag[:, ~border].mean() - 1) < 0.05


def test_integer_budget_and_comparison_match_the_float_reference():
    import math

    from unlearnable.poison import compare

    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (60, 80, 3), dtype=torch.uint8, generator=g)
    delta = torch.randn(3, 60, 80, generator=g) * 0.05
    out = apply_budget(a, delta, 8)
    assert torch.equal(apply_budget(a, delta, 8, rows=7), out)  # row blocks that do not divide the height
    ref = (a.float() + (delta.permute(1, 2, 0) * 255).clamp(-8, 8)).round().clamp(0, 255).to(torch.uint8)
    assert (out.int() - a.int()).abs().max() <= 8
    assert (out.int() - ref.int()).abs().max() <= 1 and (out != ref).float().mean() < 1e-3  # float ties only
    change, quality = compare(out, a)
    assert change == (out.int() - a.int()).abs().max().item()
    mse = (out.float() - a.float()).pow(2).mean().item()
    assert quality == round(10 * math.log10(255**2 / mse), 3)
    assert compare(a, a) == (0, None)


def _photo_with_metadata(path, profile_space="sRGB"):
    """A camera-like JPEG: wide-gamut-style colour profile, EXIF with author, date, GPS and orientation, XMP."""
    from PIL import ImageCms

    g = torch.Generator().manual_seed(3)
    img = Image.frombytes("RGB", (40, 24), torch.randint(0, 256, (24, 40, 3), generator=g, dtype=torch.uint8).numpy().tobytes())
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to show
    exif[0x8298] = "(c) Jane Doe"
    exif.get_ifd(0x8769)[0x9003] = "2026:01:02 03:04:05"
    exif.get_ifd(0x8825)[1] = "N"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile(profile_space)).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:rights>Jane Doe</dc:rights></x:xmpmeta>'
    img.save(path, quality=95, exif=exif, icc_profile=icc, xmp=xmp)
    return icc


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_colour_profile_and_exif_travel_with_the_picture(tmp_path, gen_file, fmt):
    (tmp_path / "photos").mkdir()
    icc = _photo_with_metadata(tmp_path / "photos" / "cam.jpg")
    protect_folder(tmp_path / "photos", gen_file, tmp_path / "out", PoisonConfig(fmt=fmt))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (entry,) = manifest["files"]
    assert entry["metadata"] == ["exif", "icc_profile", "xmp"]
    with Image.open(tmp_path / "out" / entry["output"]) as out:
        assert out.size == (24, 40)  # upright, and no orientation tag to turn it again
        assert out.info["icc_profile"] == icc
        exif = out.getexif()
        assert 0x0112 not in exif and exif[0x8298] == "(c) Jane Doe"
        assert exif.get_ifd(0x8769)[0x9003] == "2026:01:02 03:04:05" and exif.get_ifd(0x8825)[1] == "N"
        xmp = out.info.get("xmp") or out.info.get("XML:com.adobe.xmp")
        assert "Jane Doe" in (xmp.decode() if isinstance(xmp, bytes) else xmp)


def test_strip_metadata_and_a_profile_of_another_colour_space_is_dropped(tmp_path, gen_file):
    from PIL import ImageCms

    photos = tmp_path / "photos"
    photos.mkdir()
    _photo_with_metadata(photos / "cam.jpg")
    Image.new("CMYK", (16, 16), (0, 50, 100, 0)).save(photos / "print.tiff")
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert lab[16:20] == b"Lab "  # a profile for another colour space than the written pixels
    Image.new("RGB", (16, 16), (9, 9, 9)).save(photos / "lab.png", icc_profile=lab)
    protect_folder(photos, gen_file, tmp_path / "kept", PoisonConfig())
    kept = {e["source"]: e["metadata"] for e in json.loads((tmp_path / "kept" / "manifest.json").read_text())["files"]}
    assert kept == {"cam.jpg": ["exif", "icc_profile", "xmp"], "print.tiff": [], "lab.png": []}
    protect_folder(photos, gen_file, tmp_path / "bare", PoisonConfig(metadata=False))
    with Image.open(tmp_path / "bare" / "cam.png") as out:
        assert "icc_profile" not in out.info and not out.getexif() and "XML:com.adobe.xmp" not in out.info
    with pytest.raises(DataError, match="add --strip-metadata"):  # continuing it must not mix the two
        protect_folder(photos, gen_file, tmp_path / "bare", PoisonConfig())


def test_phone_heic_is_protected_and_camera_raw_is_named_not_ignored(tmp_path, gen_file):
    pytest.importorskip("pillow_heif")  # a dependency; skipped only on a broken install
    photos = tmp_path / "photos"
    photos.mkdir()
    g = torch.Generator().manual_seed(5)
    Image.frombytes("RGB", (48, 32), torch.randint(0, 256, (32, 48, 3), generator=g, dtype=torch.uint8).numpy().tobytes()
                    ).save(photos / "IMG_0001.HEIC", quality=95)
    (photos / "DSC_0002.NEF").write_bytes(b"II*\x00 raw sensor data")
    skipped = []
    result = protect_folder(photos, gen_file, tmp_path / "out", PoisonConfig(), on_skip=skipped.append)
    assert (result.files, result.protected) == (2, 1)
    assert [(s.path, s.reason) for s in skipped] == [("DSC_0002.NEF", "a camera RAW file: export it as JPEG or TIFF first")]
    orig, prot = decode_image(photos / "IMG_0001.HEIC"), decode_image(tmp_path / "out" / "IMG_0001.png")
    assert orig.rgb.shape == prot.rgb.shape == (32, 48, 3)
    assert 0 < (prot.rgb.int() - orig.rgb.int()).abs().max().item() <= 8


def test_a_folder_of_raw_files_says_what_to_do(tmp_path, gen_file):
    from unlearnable.data import load_pictures

    (tmp_path / "raw").mkdir()
    for i in range(3):
        (tmp_path / "raw" / f"IMG_{i}.CR2").write_bytes(b"raw")
    for attempt in (lambda: protect_folder(tmp_path / "raw", gen_file, tmp_path / "out"),
                    lambda: load_pictures(tmp_path / "raw", 32, "none")):
        with pytest.raises(DataError, match=r"no readable pictures in .*raw: 3 file\(s\) skipped, e\.g\. IMG_0\.CR2 "
                                            r"\(a camera RAW file: export it as JPEG or TIFF first\)"):
            attempt()


def test_full_amplitude_takes_every_value_to_the_budget_in_the_generators_direction(tmp_path, gen_file):
    """--amplitude full moves every computed value by the whole budget, the sign the generator
    chose; --amplitude generator (the default) keeps its amplitudes. Both stay within the budget."""
    from unlearnable.io.genfile import load_generator
    from unlearnable.poison import perturb_at

    gen, _ = load_generator(gen_file)
    x = torch.rand(2, 3, 32, 48)
    own = perturb_at(gen, x, [None, None], PoisonConfig(), 0, 8 / 255)
    full = perturb_at(gen, x, [None, None], PoisonConfig(amplitude="full"), 0, 8 / 255)
    assert torch.equal(full.sign(), own.sign()) and own.abs().max() <= 8 / 255 + 1e-6
    assert torch.allclose(full.abs()[own != 0], torch.tensor(8 / 255))
    assert own.abs().mean() < 0.9 * full.abs().mean()  # the generator alone leaves budget unused
    # on pictures, through poison: every changed value moves by the whole 8 levels (or hits 0/255)
    Image.fromarray((x[0].permute(1, 2, 0) * 255).byte().numpy()).save(tmp_path / "p.png")
    for amplitude, out in (("full", "o-full"), ("generator", "o-gen")):
        res = protect_folder(tmp_path, gen_file, tmp_path.parent / out, PoisonConfig(amplitude=amplitude))
        assert res.protected == 1 and res.max_change_levels == 8
    original = torch.from_numpy(np.array(Image.open(tmp_path / "p.png"))).int()
    moved = torch.from_numpy(np.array(Image.open(tmp_path.parent / "o-full" / "p.png"))).int() - original
    inside = (original >= 8) & (original <= 247)  # not clipped at black or white
    assert moved[inside].abs().min() == 8
    gentle = torch.from_numpy(np.array(Image.open(tmp_path.parent / "o-gen" / "p.png"))).int() - original
    assert gentle.abs().float().mean() < moved.abs().float().mean()
    again = runner.invoke(app, ["poison", str(tmp_path), "--gen", str(gen_file), "--out", str(tmp_path.parent / "o-full")])
    assert again.exit_code == 1 and "--amplitude full" in again.output  # a resume keeps the run's amplitude
