#!/usr/bin/env python3
"""Writes the fuzz seed corpus (Tests/Fixtures/fuzz/corpus/<target>/): small valid files per
reader, copied from the other fixtures or made here with safetensors/h5py/zlib. Re-run from the
repository root after changing a reader's format; the files are committed."""
import os, shutil, struct, zlib
import numpy as np
import h5py
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.dirname(ROOT)
REPO = os.path.dirname(os.path.dirname(FIX))
C = os.path.join(ROOT, "corpus")

def out(target, name):
    d = os.path.join(C, target)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)

def copy(target, src, name=None):
    shutil.copyfile(src, out(target, name or os.path.basename(src)))

# safetensors: the Python-written fixture plus every dtype family, metadata, a scalar, an empty tensor.
copy("safetensors", os.path.join(FIX, "safetensors/python_written.safetensors"))
save_file({
    "conv.weight": np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2),
    "bn.running_var": np.ones(2, dtype=np.float16),
    "bn.num_batches_tracked": np.array(3, dtype=np.int64),
    "mask": np.array([True, False]),
    "idx": np.array([1, 2, 3], dtype=np.int32),
    "empty": np.zeros((0, 3), dtype=np.float64),
}, out("safetensors", "dtypes.safetensors"), metadata={"format": "pt", "arch": "tiny"})
with open(out("safetensors", "empty-header.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", 2) + b"{}")

# .pth: zip (torch.save) files and the legacy pickle format, as torch wrote them.
# (A name starting "refused-" is a seed the target as a whole refuses; the replay test checks both.)
for n in ["tiny_state.pth", "checkpoint_module.pth"]:
    copy("pth", os.path.join(FIX, "pth", n))
copy("pth", os.path.join(FIX, "pth/legacy.pth"), "refused-legacy.pth")

# HDF5: a Finch checkpoint's layout (root attributes, config, model, metrics, rng, optimizer)
# and a plain weights file.
vstr = h5py.string_dtype("utf-8")
def checkpoint(f):
    f.attrs.create("format", "finch-checkpoint", dtype=vstr)
    f.attrs["version"] = np.int64(1)
    f.attrs["epoch"] = np.int64(2)
    f.attrs["global_step"] = np.int64(30)
    f.attrs["best_metric"] = np.float64(0.75)
    f.attrs.create("model", "mobilenetv3_small_100", dtype=vstr)
    f.attrs["num_classes"] = np.int64(2)
    f.attrs.create("classes", ["daisy", "rose"], dtype=vstr)
    f.create_dataset("config", data="experiment: tiny\nmodel: {name: mobilenetv3_small_100}\n", dtype=vstr)
    f.create_dataset("model/classifier.weight", data=np.arange(6, dtype=np.float32).reshape(2, 3))
    f.create_dataset("model/classifier.bias", data=np.zeros(2, dtype=np.float32))
    f.create_dataset("model/bn.num_batches_tracked", data=np.int64(5))
    f.create_dataset("metrics/train:loss", data=np.array([1.5, 0.9]))
    f.create_dataset("metrics/val:top1", data=np.array([0.5, 0.75]))
    f.create_dataset("rng/train", data=np.array([1, 2, 3, 4], dtype=np.int64))
    g = f.create_group("optimizer/groups/0")
    g.attrs.create("name", "default", dtype=vstr)
    g.attrs["lr"] = 1e-3
    g.attrs.create("params", ["classifier.weight", "classifier.bias"], dtype=vstr)
    f["optimizer"].attrs.create("type", "adamw", dtype=vstr)
    f["optimizer"].attrs["betas"] = np.array([0.9, 0.999])
    s = f.create_group("optimizer/state/classifier.bias")
    s.attrs["step"] = np.int64(30)
    s.create_dataset("exp_avg", data=np.zeros(2, dtype=np.float32))
# The oldest file format (h5py's default), and the newest, whose metadata carries checksums.
with h5py.File(out("hdf5", "checkpoint.h5"), "w") as f:
    checkpoint(f)
with h5py.File(out("hdf5", "checkpoint-latest.h5"), "w", libver="latest") as f:
    checkpoint(f)
# Weights only: read by inspect and WeightsFile, refused as a checkpoint.
with h5py.File(out("hdf5", "refused-weights-only.h5"), "w") as f:
    f.attrs.create("arch", "tiny", dtype=vstr)
    f.create_dataset("model/fc.weight", data=np.ones((2, 2), dtype=np.float32))
    f.create_dataset("model/fc.bias", data=np.zeros(2, dtype=np.float32))

# PNG: the image fixtures (grey, 16-bit grey, palette, RGB, RGBA) plus an Adam7-interlaced one.
for n in ["grey.png", "grey16.png", "palette.png", "rgb.png", "rgba.png"]:
    copy("png", os.path.join(FIX, "images", n))

def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)

def interlaced_png(w, h):
    # Adam7 passes, RGB 8-bit, filter 0 on every row.
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        xs, ys = range(x0, w, dx), range(y0, h, dy)
        if not xs or not ys:
            continue
        for y in ys:
            raw += b"\0" + b"".join(bytes([(x * 40) % 256, (y * 40) % 256, 128]) for x in xs)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")

with open(out("png", "interlaced.png"), "wb") as f:
    f.write(interlaced_png(6, 5))

# JPEG: baseline, progressive, CMYK, greyscale, EXIF-rotated, and the truncated one (refused).
for n in ["baseline.jpg", "progressive.jpg", "cmyk.jpg", "grey.jpg", "exif6.jpg"]:
    copy("jpeg", os.path.join(FIX, "images", n))
copy("jpeg", os.path.join(FIX, "images/truncated.jpg"), "refused-truncated.jpg")

# Config: the experiment configs, and some with --set overrides (NUL-separated after the YAML).
exp = os.path.join(REPO, "Experiments")
for n in sorted(os.listdir(exp)):
    if n.endswith(".yaml"):
        copy("config", os.path.join(exp, n))
with open(os.path.join(exp, "flowers.yaml"), "rb") as f:
    flowers = f.read()
for name, sets in {
    "flowers-set.yaml": [b"data.image_size=96", b"optimizer.lr=1e-4", b"schedule.epochs=4"],
    "flowers-set-lists.yaml": [b"data.scale=[0.5, 1.0]", b"optimizer.layer_lr={conv_stem: 2.0e-5}"],
}.items():
    with open(out("config", name), "wb") as f:
        f.write(b"\0".join([flowers] + sets))
