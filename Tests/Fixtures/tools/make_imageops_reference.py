"""Reference outputs of timm's RandAugment ops (Pillow underneath) on one small image, for
Tests/FinchDataTests/RandAugmentTests. Writes Tests/Fixtures/data/imageops_reference.json:
input (base64 RGB bytes, width, height) and, per op and argument, Pillow's output bytes."""
import base64, json, sys
import numpy as np
from PIL import Image
sys.path.insert(0, "Tests/Fixtures/tools")
import torchvision_stub
torchvision_stub.install()
from timm.data import auto_augment as aa

W, H = 23, 17
rng = np.random.default_rng(7)
yy, xx = np.mgrid[0:H, 0:W]
base = np.stack([xx * 11 % 256, yy * 15 % 256, (xx * yy * 3) % 256], -1).astype(np.int32)
px = np.clip(base + rng.integers(-40, 40, size=base.shape), 0, 255).astype(np.uint8)
img = Image.fromarray(px, "RGB")
fill = (124, 116, 104)
BIL, BIC = Image.Resampling.BILINEAR, Image.Resampling.BICUBIC
cases = [
    ("AutoContrast", [], aa.auto_contrast(img)),
    ("Equalize", [], aa.equalize(img)),
    ("Invert", [], aa.invert(img)),
    ("Posterize", [2], aa.posterize(img, 2)),
    ("Posterize", [1], aa.posterize(img, 1)),
    ("Solarize", [100], aa.solarize(img, 100)),
    ("SolarizeAdd", [60], aa.solarize_add(img, 60)),
    ("Color", [0.3], aa.color(img, 0.3)),
    ("Color", [1.7], aa.color(img, 1.7)),
    ("Contrast", [0.4], aa.contrast(img, 0.4)),
    ("Contrast", [1.8], aa.contrast(img, 1.8)),
    ("Brightness", [0.6], aa.brightness(img, 0.6)),
    ("Brightness", [1.5], aa.brightness(img, 1.5)),
    ("Sharpness", [0.2], aa.sharpness(img, 0.2)),
    ("Sharpness", [1.9], aa.sharpness(img, 1.9)),
    ("Rotate", [17.0, "bilinear"], aa.rotate(img, 17.0, resample=BIL, fillcolor=fill)),
    ("Rotate", [-25.0, "bicubic"], aa.rotate(img, -25.0, resample=BIC, fillcolor=fill)),
    ("ShearX", [0.21, "bilinear"], aa.shear_x(img, 0.21, resample=BIL, fillcolor=fill)),
    ("ShearY", [-0.27, "bicubic"], aa.shear_y(img, -0.27, resample=BIC, fillcolor=fill)),
    ("TranslateX", [4.6, "bilinear"], aa.translate_x_abs(img, 4.6, resample=BIL, fillcolor=fill)),
    ("TranslateY", [-3.0, "bicubic"], aa.translate_y_abs(img, -3.0, resample=BIC, fillcolor=fill)),
]
enc = lambda im: base64.b64encode(np.asarray(im.convert("RGB"), dtype=np.uint8).tobytes()).decode()
out = {"width": W, "height": H, "fill": list(fill), "input": enc(img),
       "ops": [{"op": n, "args": a, "output": enc(o)} for n, a, o in cases]}
json.dump(out, open("Tests/Fixtures/data/imageops_reference.json", "w"), indent=0)
print("wrote", len(cases), "cases")
