"""PNG writers side by side on one large protected-looking picture: Pillow's and poison's.

    python examples/png_writers.py [--size 6000x4000] [--repeats 3]

Makes one synthetic photo (examples/poison_speed.py's gradients, shapes and sensor noise)
with a +-8-level perturbation on it, as `poison` writes it, then encodes it as PNG with
Pillow at `poison`'s former settings (zlib level 1, run-length; Pillow tries every row
filter) and with `poison`'s writer (unlearnable.io.codec: imagecodecs, the Sub filter), and
decodes each file with Pillow and with imagecodecs. Prints the best of ``--repeats`` seconds
for each and the file sizes, and checks that every file decodes to the same pixels.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch
from PIL import Image


def picture(w: int, h: int) -> np.ndarray:
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([0.6 * xx + 0.4 * yy, (0.3 * yy + 0.7 * xx) / 2 + 0.25, xx * yy * 0.7 + 0.1])
    img += 0.02 * torch.randn(img.shape, generator=g)  # a camera's noise
    img += torch.randint(-8, 9, img.shape, generator=g) / 255  # the protection's +-8 levels
    return (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).contiguous().numpy()


def best(fn, repeats: int):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    import imagecodecs

    from unlearnable.io import codec

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="6000x4000")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    arr = picture(w, h)

    def pillow_png() -> bytes:
        out = io.BytesIO()
        Image.fromarray(arr).save(out, format="PNG", compress_level=codec.PNG_COMPRESS_LEVEL,
                                  compress_type=codec.PNG_STRATEGY)
        return out.getvalue()

    def pillow_read(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB"))

    rows = []
    for name, enc in (("Pillow (before)", pillow_png),
                      ("poison's writer (imagecodecs, Sub filter)", lambda: codec.encode_image(torch.from_numpy(arr), None))):
        t_enc, data = best(enc, args.repeats)
        t_pil, back = best(lambda: pillow_read(data), args.repeats)
        t_ic, back2 = best(lambda: imagecodecs.png_decode(data), args.repeats)
        assert np.array_equal(back, arr) and np.array_equal(back2, arr), name
        rows.append((name, t_enc, len(data) / 1e6, t_pil, t_ic))
    print(f"{w}x{h}, torch threads {torch.get_num_threads()}, best of {args.repeats}; every file decodes to the same pixels")
    print(f"{'writer':44s} {'encode s':>9s} {'MB':>7s} {'read, Pillow s':>15s} {'read, imagecodecs s':>20s}")
    for name, t_enc, mb, t_pil, t_ic in rows:
        print(f"{name:44s} {t_enc:9.2f} {mb:7.2f} {t_pil:15.2f} {t_ic:20.2f}")
    print(f"encode ratio, poison's / Pillow: {rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
