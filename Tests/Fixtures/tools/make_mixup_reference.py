"""timm 1.0 Mixup reference values for FinchData's Mixup (Tests/FinchDataTests/MixupTests.swift):
rand_bbox + cutmix_bbox_and_lam for given λ and centres (numpy's randint patched to return them),
and mixup_target for given labels, λ per sample and smoothing. Writes Tests/Fixtures/data/mixup_reference.json.
Run from the repository root."""
import json, os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_stub
torchvision_stub.install()
import torch
from timm.data import mixup as M

boxes = []
for (h, w, lam, cy, cx) in [(32, 32, 0.7, 16, 16), (32, 32, 0.3, 2, 30), (17, 23, 0.55, 0, 22), (64, 48, 0.9, 63, 0),
                            (8, 8, 0.01, 4, 3), (5, 7, 0.5, 2, 6)]:
    seq = iter([cy, cx])
    orig = np.random.randint
    np.random.randint = lambda lo, hi, size=None: next(seq)
    try:
        (yl, yu, xl, xu), lam2 = M.cutmix_bbox_and_lam((3, h, w), lam, correct_lam=True)
    finally:
        np.random.randint = orig
    boxes.append(dict(h=h, w=w, lam=lam, cy=cy, cx=cx, box=[int(yl), int(yu), int(xl), int(xu)], corrected=float(lam2)))

targets = []
for labels, lams, smoothing, k in [([0, 3, 1, 2], [0.7, 0.7, 0.7, 0.7], 0.1, 4), ([2, 0, 1, 1, 4, 3], [0.2, 1.0, 0.55, 0.55, 1.0, 0.2], 0.0, 5),
                                   ([1, 0], [0.35, 0.35], 0.3, 3)]:
    t = M.mixup_target(torch.tensor(labels), k, torch.tensor(lams, dtype=torch.float32).unsqueeze(1), smoothing)
    targets.append(dict(labels=labels, lams=lams, smoothing=smoothing, classes=k, targets=t.flatten().tolist()))
json.dump(dict(boxes=boxes, targets=targets), open("Tests/Fixtures/data/mixup_reference.json", "w"), indent=1)
print(len(boxes), "boxes,", len(targets), "target sets")
