"""Well-conditioned parity fixtures: real ImageNet weights on real flower photos.

With random-init weights many activations sit near a ReLU/ReLU6 kink and float32 noise is large,
so a real bug of 1e-4 relative can hide in it. Trained weights on real photos are far better
conditioned. This makes a compact v2 fixture (see make_parity.py: float64 truth, float32 noise as the
largest distance over its 14 float32 orders, ORDERS, also for the eval-mode gradients; gradient
probes) that also carries what Finch needs to run it without ../shared:

  weights.<key>   the model's state_dict rounded to float16 (Finch widens F16 exactly)
  input           [B,3,R,R] float16: the photos, (pixel/255 - mean)/std, rounded to float16
The float64 truth and the float32 runs all start from exactly these rounded values, so the rounding
changes the problem, not the comparison.

Photos: the first `batch` files (sorted by name) of val/<class>, taken round-robin over the sorted
classes; they are 128x128 already, so no resize. Labels: the flower class index (0..4) mapped to
ImageNet ids through FLOWER_CLASSES; the head keeps its 1000 ImageNet classes.

Usage: python make_pretrained_parity.py OUTDIR WEIGHTS.safetensors FLOWERS_DIR model:batch[:probes]
Needs torch, timm, safetensors, numpy, pillow.
"""
import json, os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_parity  # installs the torchvision stub
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

# ImageNet ids of the nearest classes: daisy; the rest have none, so plausible stand-ins
# (dandelion -> 'ear', rose -> 'hip', sunflower -> 'sulphur butterfly', tulip -> 'pot').
FLOWER_CLASSES = {"daisy": 985, "dandelion": 998, "rose": 989, "sunflower": 325, "tulip": 738}


def photos(root, batch):
    classes = sorted(os.listdir(os.path.join(root, "val")))
    files = {c: sorted(os.listdir(os.path.join(root, "val", c))) for c in classes}
    picked = [(c, files[c][i // len(classes)]) for i, c in ((i, classes[i % len(classes)]) for i in range(batch))]
    images, labels = [], []
    for c, f in picked:
        img = np.asarray(Image.open(os.path.join(root, "val", c, f)).convert("RGB"), dtype=np.float32)
        images.append(img.transpose(2, 0, 1))
        labels.append(FLOWER_CLASSES[c])
    return np.stack(images), np.array(labels, dtype=np.int64), picked


def main():
    outdir, weights, flowers, spec = sys.argv[1:5]
    name, batch, *rest = spec.split(":")
    batch = int(batch)
    probes = int(rest[0]) if rest else make_parity.PROBES
    with safe_open(weights, "pt") as f:
        meta_in = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    state = {k: (v.half().float() if v.is_floating_point() else v) for k, v in state.items()}
    mean = np.array(json.loads(meta_in["mean"]), dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(json.loads(meta_in["std"]), dtype=np.float32).reshape(1, 3, 1, 1)
    pixels, y, picked = photos(flowers, batch)
    x = torch.from_numpy(((pixels / np.float32(255) - mean) / std).astype(np.float32))
    # NCHW-contiguous: the photos' HWC arrays made a channels-last-strided tensor, and PyTorch keeps
    # an input's layout, so the "NCHW" orders ran channels-last (half the orders sampled one layout).
    x = x.half().float().contiguous()
    classes = state["classifier.weight"].shape[0]
    # Train-mode BatchNorm over a batch of 8 real photos is ill-conditioned with trained weights
    # (channels whose mean dwarfs their spread lose float32 digits to cancellation), so these files
    # also hold the eval-mode gradients, where BatchNorm uses its running statistics.
    out, meta = make_parity.compact(name, classes, state, x, torch.from_numpy(y), probes, with_eval_grads=True)
    out.update({f"weights.{k}": (v.half() if v.is_floating_point() else v) for k, v in state.items()})
    out["input"] = x.half()
    meta.update(weights="float16 ImageNet (" + os.path.basename(weights) + ")", input="flowers val photos, float16",
                photos=",".join(f"{c}/{f}" for c, f in picked), mean=meta_in["mean"], std=meta_in["std"])
    res = x.shape[-1]
    path = os.path.join(outdir, f"{name}_imagenet_{res}_{batch}.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
    print(path, "loss", float(out["f64.train.loss"]), "bytes", os.path.getsize(path))


if __name__ == "__main__":
    main()
