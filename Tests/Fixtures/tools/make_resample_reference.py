"""Pillow's Image.resize on small RGB images, for Tests/FinchDataTests/ResampleTests (Finch's
Resample must give the same bytes). Writes Tests/Fixtures/data/resample_reference.json: the inputs
(base64 RGB bytes, width, height) and, per case, the filter, box, output size and Pillow's bytes.
Run from the repo root: python3 Tests/Fixtures/tools/make_resample_reference.py"""
import base64, json
import numpy as np
import PIL
from PIL import Image


def pattern(w, h, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 11 % 256, yy * 15 % 256, (xx * yy * 3) % 256], -1).astype(np.int32)
    # Edges at 0 and 255 make the clamps of both passes run.
    px = np.clip(base + rng.integers(-90, 90, size=base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(px, "RGB")


images = {"small": pattern(23, 17, 7), "wide": pattern(61, 38, 11)}
F = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
cases = [
    # (image, filter, box or None, width, height): shrinking (antialiased), enlarging, one axis only,
    # neither (a copy), crops with integer and fractional boxes (RandomResizedCrop), a one-pixel box.
    ("small", "bicubic", None, 3, 2),
    ("small", "bicubic", None, 41, 29),
    ("small", "bilinear", None, 41, 29),
    ("small", "bicubic", None, 27, 20),
    ("small", "bicubic", None, 11, 17),
    ("small", "bilinear", None, 23, 9),
    ("small", "bicubic", None, 23, 17),
    ("small", "bilinear", None, 1, 1),
    ("small", "bicubic", (2, 3, 15, 12), 16, 16),
    ("small", "bilinear", (0, 5, 23, 17), 23, 12),
    ("small", "bicubic", (1.5, 2.25, 20.75, 16.0), 10, 7),
    ("small", "bicubic", (5, 4, 6, 5), 7, 7),
    ("wide", "bicubic", None, 73, 45),
    ("wide", "bicubic", None, 20, 13),
    ("wide", "bilinear", (7, 3, 50, 31), 32, 32),
    ("wide", "bicubic", (7, 3, 50, 31), 32, 32),
    ("wide", "bicubic", (0, 0, 61, 38), 64, 64),
]
out = {"pillow": PIL.__version__,
       "images": {k: {"width": im.width, "height": im.height, "pixels": base64.b64encode(im.tobytes()).decode()}
                  for k, im in images.items()},
       "cases": []}
for name, f, box, w, h in cases:
    r = images[name].resize((w, h), F[f], box=box)
    out["cases"].append({"image": name, "filter": f, "box": list(map(float, box)) if box else None,
                         "width": w, "height": h, "output": base64.b64encode(r.tobytes()).decode()})
with open("Tests/Fixtures/data/resample_reference.json", "w") as fh:
    json.dump(out, fh, indent=1)
    fh.write("\n")
print(f"{len(cases)} cases, Pillow {PIL.__version__}")
