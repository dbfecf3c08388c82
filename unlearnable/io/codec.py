"""One picture file in, 8-bit tensors out, and back: decoding, encoding, and the metadata that
travels with a picture.

Every image becomes an RGB ``uint8`` tensor of shape (H, W, 3) plus, when the file had one,
an alpha plane (H, W) that is carried through to the output untouched. EXIF orientation is
applied, palette/CMYK/16-bit images are converted, and a damaged file is reported with the
reason instead of stopping the run. The picture's colour profile, EXIF (orientation removed,
since it is applied) and XMP travel with it to the protected file: without its profile a
wide-gamut photo (Display P3, Adobe RGB) would look visibly different.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError
from .discovery import _HEIF

# Pictures larger than this are refused as possible decompression bombs: Pillow's own
# threshold (Image.MAX_IMAGE_PIXELS, about 89.5 megapixels, e.g. 11,500 x 7,780).
MAX_PIXELS = 89_478_485


@dataclass
class Decoded:
    """A decoded picture: ``rgb`` uint8 (H, W, 3) and optional ``alpha`` uint8 (H, W)."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    gray: bool = False  # the file was grayscale: rgb holds three equal channels, written back as one
    # what describes the picture rather than being it: "icc_profile", "exif", "xmp" (bytes),
    # only those the file had and that still fit the decoded pixels
    meta: dict = field(default_factory=dict)


@functools.cache
def _readers() -> None:
    """Register the readers Pillow lacks (HEIC), once."""
    if _HEIF:
        from pillow_heif import register_heif_opener

        register_heif_opener()


def open_picture(path: Path) -> Image.Image:
    """``Image.open`` with every reader this installation has (HEIC included)."""
    _readers()
    return Image.open(path)


def _to_8bit(img: Image.Image) -> Image.Image:
    """Bring high-bit-depth single-channel modes down to 8-bit 'L' by scaling, not clipping."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return img.convert("I").point(lambda v: v * (1 / 257) + 0.5).convert("L")  # rounds
    if img.mode == "I":
        lo, hi = img.getextrema()
        scale = 1 / 257 if hi > 255 else 1
        return img.point(lambda v: v * scale + 0.5).convert("L")
    if img.mode == "F":
        lo, hi = img.getextrema()
        scale = 255.0 if hi <= 1.0 else (1 / 257 if hi > 255 else 1.0)
        return img.point(lambda v: v * scale).convert("L")
    return img


def _shrink_to(img: Image.Image, at_least: int) -> Image.Image:
    """A smaller copy whose shorter side is still at least ``at_least`` pixels (box filter), or ``img``."""
    factor = min(img.size) // at_least if at_least else 1
    return img.reduce(factor) if factor >= 2 else img


def decode_image(path: Path, at_least: int = 0, metadata: bool = False) -> Decoded:
    """Decode one file (first frame of animations) into RGB and optional alpha tensors.

    ``metadata``: also read the colour profile, EXIF and XMP into ``Decoded.meta`` (what
    `poison` writes back; training and checks have no use for them).

    ``at_least`` > 0 asks only for a picture whose shorter side has at least that many
    pixels: a JPEG is then decoded at 1/2, 1/4 or 1/8 scale (Pillow's draft mode: a 24-MP
    photo in about a tenth of the time) and anything larger is reduced by whole factors.
    Raises :class:`DataError` with the reason for empty, corrupt, truncated, non-image or
    oversized files.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError("empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_picture(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise DataError(
                        f"{img.width}x{img.height} pixels is over the {MAX_PIXELS:,}-pixel limit "
                        "(possible decompression bomb); downscale it first"
                    )
                img.seek(0)
                if at_least and min(img.size) >= 2 * at_least:
                    w, h = img.size
                    img.draft(None, (math.ceil(w * at_least / min(w, h)), math.ceil(h * at_least / min(w, h))))
                img.load()
                img = ImageOps.exif_transpose(img)
                meta = _metadata(img) if metadata else {}
                img = _to_8bit(img)
                gray = img.mode in ("1", "L", "LA")
                has_alpha = img.mode in ("RGBA", "LA", "PA") or (
                    img.mode == "P" and "transparency" in img.info
                )
                if has_alpha:
                    rgba = _shrink_to(img.convert("RGBA"), at_least)
                    data = _tensor(rgba, 4)
                    return Decoded(rgb=data[..., :3].contiguous(), alpha=data[..., 3].contiguous(), gray=gray,
                                   meta=meta)
                return Decoded(rgb=_tensor(_shrink_to(img.convert("RGB"), at_least), 3), alpha=None, gray=gray,
                               meta=meta)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError("too many pixels (possible decompression bomb); downscale it first") from None
    except UnidentifiedImageError:
        raise DataError("not an image Pillow can read (wrong suffix or corrupt header)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc) or type(exc).__name__
        if "truncated" in msg.lower():
            msg = "truncated file (image data ends early)"
        raise DataError(f"cannot decode: {msg}") from None


def _metadata(img: Image.Image) -> dict:
    """The colour profile, EXIF and XMP of an opened (already upright) picture, as bytes.

    A profile is kept only for the colour space the pixels are decoded into: a CMYK
    profile is dropped with the CMYK-to-RGB conversion. EXIF is re-serialised without the
    embedded thumbnail (an unprotected copy of the picture) and without orientation.
    """
    meta = {}
    icc = img.info.get("icc_profile")
    if icc and _icc_space(icc) in ("RGB ", "GRAY"):
        meta["icc_profile"] = icc
    try:
        exif = img.getexif()
        exif.pop(0x0112, None)  # orientation: the pixels are already upright
        if len(exif):
            meta["exif"] = exif.tobytes()
    except (OSError, ValueError, KeyError, TypeError, SyntaxError, struct.error):
        pass  # a damaged EXIF block costs the EXIF (the manifest lists what was kept), never the picture
    xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    if xmp:
        meta["xmp"] = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    return meta


def _icc_space(profile: bytes) -> str:
    """The data colour space of an ICC profile ('RGB ', 'GRAY', 'CMYK', ...), from its header."""
    return profile[16:20].decode("latin-1") if len(profile) >= 20 else ""


def _tensor(img: Image.Image, channels: int) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).view(img.height, img.width, channels)


# PNG is written by imagecodecs (libpng) with zlib level 1, the run-length strategy and the
# Sub filter on every row, the fast setting libpng's own documentation gives: several times
# faster than Pillow's encoder, which tries every filter on every row, for a file of about the
# same size (docs/results.md, "Writing PNG"). PNG stays lossless at every setting.
PNG_COMPRESS_LEVEL = 1
PNG_STRATEGY = 3  # zlib Z_RLE
PNG_FILTER = 16  # libpng's PNG_FILTER_SUB


def encode_image(rgb: torch.Tensor, alpha: torch.Tensor | None, fmt: str = "png", quality: int = 95,
                 gray: bool = False, meta: dict | None = None) -> bytes:
    """Encode uint8 RGB (and alpha) as PNG (lossless), or JPEG/WebP when asked for.

    ``gray``: write the first channel as a grayscale picture (L, or LA with alpha).
    ``meta``: colour profile, EXIF and XMP to embed (see :func:`_metadata`); a profile
    whose colour space does not match the written pixels is left out.
    """
    planes = rgb[..., :1] if gray else rgb
    data = planes if alpha is None else torch.cat([planes, alpha.unsqueeze(-1)], dim=-1)
    mode = ("L" if gray else "RGB") if alpha is None else ("LA" if gray else "RGBA")
    pixels = data.cpu().numpy()
    pixels = pixels[..., 0] if pixels.shape[2] == 1 else pixels
    if fmt not in ("png", "jpeg", "webp"):
        raise DataError(f"unknown output format {fmt!r}; use png, jpeg or webp")
    if fmt == "png":
        return _png(pixels, mode, _embedded(meta or {}, mode, fmt))
    img = Image.fromarray(np.ascontiguousarray(pixels))  # mode from the shape: L, LA, RGB or RGBA
    if fmt in ("jpeg", "webp") and mode == "LA":
        img = img.convert("RGBA")  # neither encoder takes LA
    if fmt == "jpeg":
        img = img.convert("L" if mode == "L" else "RGB")
    elif fmt == "webp" and mode == "L":
        img = img.convert("RGB")  # WebP stores colour; say so to the profile check below
    options = _embedded(meta or {}, img.mode, fmt)
    try:
        return _save(img, fmt, quality, options)
    except ValueError:  # e.g. EXIF over JPEG's 64 KB segment: the picture matters more
        return _save(img, fmt, quality, {k: v for k, v in options.items() if k != "exif"})


def _embedded(meta: dict, mode: str, fmt: str) -> dict:
    """Pillow save options carrying ``meta`` into a ``mode`` picture of format ``fmt``."""
    options = {}
    icc = meta.get("icc_profile")
    if icc and _icc_space(icc) == ("GRAY" if mode in ("L", "LA") else "RGB "):
        options["icc_profile"] = icc
    if meta.get("exif"):
        options["exif"] = meta["exif"]
    if meta.get("xmp"):
        if fmt == "png":
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            info.add_itxt("XML:com.adobe.xmp", meta["xmp"].decode("utf-8", "replace"))
            options["pnginfo"] = info
        else:
            options["xmp"] = meta["xmp"]
    return options


# JPEG keeps colour at full resolution (4:4:4, not the usual 4:2:0): the perturbation's colour
# detail survives, so a protected photo published at quality 85 keeps its protection (docs/results.md,
# "Publishing JPEG or WebP"), for files about a tenth larger.
JPEG_SUBSAMPLING = 0


def _png(pixels: np.ndarray, mode: str, options: dict) -> bytes:
    """uint8 ``pixels`` (H, W) or (H, W, bands) of ``mode`` as PNG: by imagecodecs, the metadata chunks as Pillow writes them.

    Pillow writes the colour profile, EXIF and XMP of a 1x1 picture of the same mode; those
    chunks go in after our IHDR, where Pillow puts them too (the PNG standard wants them
    before the first IDAT).
    """
    import imagecodecs

    data = imagecodecs.png_encode(np.ascontiguousarray(pixels), level=PNG_COMPRESS_LEVEL, strategy=PNG_STRATEGY, filter=PNG_FILTER)
    if not options:
        return data
    probe = io.BytesIO()
    Image.new(mode, (1, 1)).save(probe, format="PNG", **options)
    extra = b"".join(chunk for kind, chunk in _png_chunks(probe.getvalue()) if kind not in (b"IHDR", b"IDAT", b"IEND"))
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, then IHDR's length, type, 13 bytes and CRC
    return data[:ihdr_end] + extra + data[ihdr_end:]


def decode_written(data: bytes) -> torch.Tensor:
    """The RGB pixels (H, W, 3) of a file this run encoded, decoded again to check it.

    PNG by libpng (imagecodecs, faster than Pillow's decoder), JPEG and WebP by Pillow; gray
    pictures come back with their one channel in all three, alpha is left out.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        import imagecodecs

        arr = imagecodecs.png_decode(data)
        arr = arr[..., None] if arr.ndim == 2 else arr
        arr = np.repeat(arr[..., :1], 3, axis=2) if arr.shape[2] <= 2 else arr[..., :3]
        return torch.from_numpy(np.ascontiguousarray(arr))
    with Image.open(io.BytesIO(data)) as img:
        return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.uint8).copy())


def _png_chunks(data: bytes):
    """(type, whole chunk) of each chunk of a PNG file, in order."""
    at = 8
    while at + 8 <= len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        yield data[at + 4:at + 8], data[at:at + 12 + length]
        at += 12 + length


def _save(img: Image.Image, fmt: str, quality: int, options: dict) -> bytes:
    out = io.BytesIO()  # PNG never comes here: encode_image writes it with _png
    if fmt == "jpeg":
        img.save(out, format="JPEG", quality=quality, **{"subsampling": JPEG_SUBSAMPLING, **options})
    else:
        img.save(out, format=fmt.upper(), quality=quality, **options)
    return out.getvalue()
