import io

import numpy as np

import pytest
from PIL import Image

from unlearnable.errors import DataError
from unlearnable.io import codec
from unlearnable.io.codec import decode_image
from unlearnable.io.discovery import list_images


def _save(path, img, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def test_modes_are_converted_and_alpha_kept(tmp_path):
    rgba = Image.new("RGBA", (5, 4), (10, 20, 30, 77))
    assert decode_image(_save(tmp_path / "a.png", rgba)).alpha.unique().tolist() == [77]
    la = Image.new("LA", (5, 4), (100, 5))
    d = decode_image(_save(tmp_path / "la.png", la))
    assert d.rgb.shape == (4, 5, 3) and d.alpha.unique().tolist() == [5]
    pal = Image.new("P", (3, 3), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.info["transparency"] = 1
    d = decode_image(_save(tmp_path / "p.png", pal, transparency=1))
    assert d.alpha is not None and d.alpha.max() == 0
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 0, 0))
    d = decode_image(_save(tmp_path / "c.jpg", cmyk))
    assert d.rgb.shape == (4, 4, 3) and d.alpha is None
    gray = Image.new("L", (4, 4), 99)
    assert decode_image(_save(tmp_path / "g.bmp", gray)).rgb.unique().tolist() == [99]


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    img = Image.new("I;16", (4, 4))
    img.putdata([65535] * 8 + [32768] * 8)
    d = decode_image(_save(tmp_path / "deep.png", img))
    assert d.rgb[0, 0].tolist() == [255, 255, 255]
    assert 126 <= int(d.rgb[3, 3, 0]) <= 129


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (6, 2), (200, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    d = decode_image(_save(tmp_path / "rot.jpg", img, exif=exif.tobytes()))
    assert d.rgb.shape[:2] == (6, 2)


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), (255, 0, 0)), Image.new("RGB", (4, 4), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert decode_image(path).rgb[0, 0, 0] > 200


@pytest.mark.parametrize("content,reason", [(b"", "empty file"), (b"hello, not an image", "not an image")])
def test_bad_files_have_reasons(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(DataError, match=reason):
        decode_image(path)


def test_truncated_file(tmp_path):
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buf, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[:400])
    with pytest.raises(DataError, match="truncated|cannot decode"):
        decode_image(path)


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    path = _save(tmp_path / "big.png", Image.new("RGB", (100, 100)))
    monkeypatch.setattr(codec, "MAX_PIXELS", 5000)
    with pytest.raises(DataError, match="decompression bomb"):
        decode_image(path)


def test_listing_is_recursive_and_sorted(tmp_path):
    for rel in ("b/2.png", "a/1.JPG", "a/sub/0.webp", "notes.txt", ".hidden/x.png"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    rels = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert rels == ["a/1.JPG", "a/sub/0.webp", "b/2.png"]


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "nope")


@pytest.mark.parametrize("suffix,mode", [("jpg", "RGB"), ("png", "RGB"), ("png", "RGBA"), ("jpg", "L")])
def test_a_small_copy_is_decoded_straight_from_a_large_picture(tmp_path, suffix, mode):
    """decode_image(at_least=n): JPEG draft mode and whole-factor reduction, then the same picture as a full decode."""
    import numpy as np
    import torch

    from unlearnable.resize import fit_to_size

    yy, xx = np.meshgrid(np.linspace(0, 1, 1200), np.linspace(0, 1, 1800), indexing="ij")
    rgb = np.stack([xx, yy, (xx + yy) / 2], -1) * 200 + 20
    img = Image.fromarray(rgb.astype(np.uint8)).convert(mode)
    path = _save(tmp_path / f"big.{suffix}", img)
    small, full = decode_image(path, at_least=64), decode_image(path)
    assert 64 <= min(small.rgb.shape[:2]) < 128 and full.rgb.shape == (1200, 1800, 3)
    assert (small.alpha is None) == (mode != "RGBA") and small.gray == full.gray
    a, b = fit_to_size(small.rgb, 32).float(), fit_to_size(full.rgb, 32).float()
    assert (a - b).abs().mean() < 1.0 and (a - b).abs().max() <= 6
    tiny = decode_image(_save(tmp_path / f"tiny.{suffix}", img.resize((40, 30))), at_least=64)
    assert tiny.rgb.shape == (30, 40, 3)  # smaller than asked: decoded as it is
    assert torch.equal(tiny.rgb, decode_image(tmp_path / f"tiny.{suffix}").rgb)


def test_jpeg_keeps_colour_detail_at_full_resolution():
    """poison --format jpeg writes 4:4:4: a pixel-wise colour pattern keeps more of itself than at 4:2:0."""
    import numpy as np
    import torch
    from PIL import JpegImagePlugin

    g = torch.Generator().manual_seed(0)
    x = torch.full((32, 32, 3), 128, dtype=torch.uint8)
    d = torch.randint(0, 2, (32, 32, 3), generator=g) * 16 - 8  # +-8 levels per pixel and channel
    kept = {}
    for sampling in (0, 2):
        data = codec._save(Image.frombytes("RGB", (32, 32), (x.int() + d).to(torch.uint8).numpy().tobytes()),
                            "jpeg", 85, {} if sampling == 0 else {"subsampling": sampling})
        with Image.open(io.BytesIO(data)) as img:
            assert JpegImagePlugin.get_sampling(img) == sampling  # 0 = 4:4:4 (our default), 2 = 4:2:0
            dec = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.int64))
        kept[sampling] = ((dec - 128) * d).sum().item() / (d * d).sum().item()
    assert kept[0] > 0.3 and kept[0] > 1.5 * kept[2], kept  # measured 0.35 against 0.20


@pytest.mark.parametrize("gray,alpha", [(False, False), (False, True), (True, False), (True, True)])
def test_png_is_lossless_in_every_mode_and_carries_its_metadata(gray, alpha):
    """The fast PNG writer: every pixel back exactly, in Pillow, with the profile, EXIF and XMP before the pixels."""
    import torch
    from PIL import ImageCms

    g = torch.Generator().manual_seed(1)
    rgb = torch.randint(0, 256, (37, 53, 3), generator=g, dtype=torch.uint8)
    if gray:
        rgb = rgb[..., :1].expand(-1, -1, 3).contiguous()
    a = torch.randint(0, 256, (37, 53), generator=g, dtype=torch.uint8) if alpha else None
    exif = Image.Exif()
    exif[0x8298] = "(c) Jane Doe"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    meta = {"exif": exif.tobytes(), "xmp": b"<x:xmpmeta>Jane Doe</x:xmpmeta>", "icc_profile": icc}
    data = codec.encode_image(rgb, a, "png", gray=gray, meta=meta)
    kinds = [kind for kind, _ in codec._png_chunks(data)]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and {b"eXIf", b"iTXt"} <= set(kinds[:kinds.index(b"IDAT")])
    assert (b"iCCP" in kinds) == (not gray)  # an RGB profile is not written into a grayscale file
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.mode == ("L" if gray else "RGB") + ("A" if alpha else "")
        back = torch.from_numpy(np.asarray(img).copy()).reshape(37, 53, -1)
        assert img.getexif()[0x8298] == "(c) Jane Doe" and "Jane Doe" in img.info["XML:com.adobe.xmp"]
        assert img.info.get("icc_profile") == (None if gray else icc)
    assert torch.equal(back[..., 0 if gray else slice(0, 3)], rgb[..., 0] if gray else rgb)
    if alpha:
        assert torch.equal(back[..., -1], a)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_the_check_decodes_what_was_written_as_pillow_does(mode):
    import torch

    g = torch.Generator().manual_seed(2)
    gray, alpha = mode.startswith("L"), mode.endswith("A")
    rgb = torch.randint(0, 256, (9, 11, 3), generator=g, dtype=torch.uint8)
    a = torch.randint(0, 256, (9, 11), generator=g, dtype=torch.uint8) if alpha else None
    for fmt in ("png", "webp") if mode in ("RGB", "RGBA") else ("png",):
        data = codec.encode_image(rgb, a, fmt, 100, gray=gray)  # as poison writes it
        with Image.open(io.BytesIO(data)) as back:
            expected = torch.from_numpy(np.asarray(back.convert("RGB")).copy())
        assert torch.equal(codec.decode_written(data), expected)
