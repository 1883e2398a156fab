"""Tiny test images for Finch's decoder tests (PIL): one 6×4 pattern in several encodings.
Pixel (x, y) = (40·x, 60·y, 200 − 30·x) before encoding."""
import io, os, struct
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
w, h = 6, 4
rgb = Image.new("RGB", (w, h))
for y in range(h):
    for x in range(w):
        rgb.putpixel((x, y), (40 * x, 60 * y, 200 - 30 * x))
rgb.save(os.path.join(here, "rgb.png"))
rgba = rgb.copy(); rgba.putalpha(128); rgba.save(os.path.join(here, "rgba.png"))
rgb.convert("L").save(os.path.join(here, "grey.png"))
rgb.convert("P", palette=Image.ADAPTIVE, colors=16).save(os.path.join(here, "palette.png"))
rgb.save(os.path.join(here, "interlaced.png"), interlace=1) if False else None
rgb.convert("I;16").save(os.path.join(here, "grey16.png"))
rgb.save(os.path.join(here, "baseline.jpg"), quality=95)
rgb.save(os.path.join(here, "progressive.jpg"), quality=95, progressive=True)
rgb.convert("L").save(os.path.join(here, "grey.jpg"), quality=95)
rgb.convert("CMYK").save(os.path.join(here, "cmyk.jpg"), quality=95)
big = rgb.resize((64, 48), Image.NEAREST); big.save(os.path.join(here, "big.jpg"), quality=95)
# EXIF orientation 6 (rotate 90° clockwise to display): stored transposed so it displays as `rgb`.
exif = Image.Exif(); exif[0x0112] = 6
rgb.transpose(Image.ROTATE_90).save(os.path.join(here, "exif6.jpg"), quality=95, exif=exif.tobytes())
open(os.path.join(here, "not_an_image.jpg"), "wb").write(b"hello, not a jpeg")
data = open(os.path.join(here, "baseline.jpg"), "rb").read()
open(os.path.join(here, "truncated.jpg"), "wb").write(data[: len(data) // 2])
for n in sorted(os.listdir(here)):
    print(n, os.path.getsize(os.path.join(here, n)))
# What PIL (libjpeg-turbo) decodes each JPEG to, EXIF orientation applied, as lossless PNG twins.
from PIL import ImageOps
for n in ["baseline", "progressive", "grey", "cmyk", "exif6", "big"]:
    ImageOps.exif_transpose(Image.open(os.path.join(here, n + ".jpg"))).convert("RGB").save(os.path.join(here, n + ".expected.png"))
