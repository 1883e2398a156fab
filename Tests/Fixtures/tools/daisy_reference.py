"""timm's top-1 on the first 40 photos (sorted) of Datasets/flowers/val/daisy with the real
ImageNet tf_efficientnet_lite0 weights in Checkpoints/, eval transform as timm builds it for
224 px: Resize(256, bicubic) of the short side (long side int(256·long/short), as torchvision),
CenterCrop(224), mean = std = 0.5. Writes Tests/Fixtures/pretrained/daisy_timm.json.
Run from the repository root: python3 Tests/Fixtures/tools/daisy_reference.py"""
import json, os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_stub
torchvision_stub.install()
import torch, timm
from safetensors.torch import load_file
from PIL import Image

model = timm.create_model("tf_efficientnet_lite0", num_classes=1000)
model.load_state_dict(load_file("Checkpoints/tf_efficientnet_lite0.safetensors"))
model.eval()
folder = "Datasets/flowers/val/daisy"
files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".jpeg", ".png")))[:40]
rows = []
for f in files:
    im = Image.open(os.path.join(folder, f)).convert("RGB")
    w, h = im.size
    short, long = min(w, h), max(w, h)
    nl = int(256 * long / short)
    im = im.resize((256, nl) if w <= h else (nl, 256), Image.BICUBIC)
    w, h = im.size
    left, top = int(round((w - 224) / 2.0)), int(round((h - 224) / 2.0))
    im = im.crop((left, top, left + 224, top + 224))
    x = (torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1) - 0.5) / 0.5
    with torch.no_grad():
        logits = model(x[None])[0]
    top5 = logits.topk(5).indices.tolist()
    rows.append({"file": f, "top1": top5[0], "top5": top5})
hits = sum(r["top1"] == 985 for r in rows)
json.dump({"model": "tf_efficientnet_lite0", "resolution": 224, "crop_pct": 0.875, "interpolation": "bicubic",
           "mean": [0.5] * 3, "std": [0.5] * 3, "daisy_class": 985, "timm_hits": hits, "torch": torch.__version__,
           "timm": timm.__version__, "images": rows},
          open("Tests/Fixtures/pretrained/daisy_timm.json", "w"), indent=1)
print(f"timm: {hits} of {len(rows)} daisy photos → class 985")
