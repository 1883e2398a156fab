#!/usr/bin/env python3
"""How good a Finch-trained teacher is on the view distillation gives it.

Loads a Finch checkpoint (HDF5) into the timm model it was trained as and scores it on the val
split in two views: `own`, the teacher's eval transform at its size (short side to size / crop_pct,
bicubic, centre crop: what distill.teacher.view own amounts to at eval), and `resized`, the
student's eval view at --student-size enlarged to the teacher's size as distill.teacher.view
resized does (F.interpolate, bilinear; --resize-mode bicubic to see what the filter costs).

  python3 Experiments/teacher_view.py Checkpoints/table/finch-teacher-s0.h5
  python3 Experiments/teacher_view.py CKPT --view resized --resize-mode bicubic --student-size 128
"""
import argparse, os, sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timm_reference as tr  # noqa: E402  (its torchvision stub, transforms and folder reader)
import timm  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def load_teacher(path, model, classes):
    m = timm.create_model(model, num_classes=classes)
    with h5py.File(path, "r") as f:
        weights = f["model"]
        state = {}
        for k, v in m.state_dict().items():
            key = k.replace("/", "%2F")
            if key in weights:
                state[k] = torch.from_numpy(np.array(weights[key]))
            elif k.endswith("num_batches_tracked"):  # Finch does not store the counter
                state[k] = v
            else:
                sys.exit(f"{path}: no '{k}' in its model group (is --model {model} right?)")
    m.load_state_dict(state)
    return m.eval()


def top1(m, samples, transform, resize=None, batch=64):
    correct = 0
    with torch.no_grad():
        for i in range(0, len(samples), batch):
            part = samples[i:i + batch]
            x = torch.stack([transform(tr.Image.open(p).convert("RGB")) for p, _ in part])
            if resize is not None:
                x = F.interpolate(x, size=(resize[0], resize[0]), mode=resize[1], align_corners=False)
            correct += (m(x).argmax(1) == torch.tensor([l for _, l in part])).sum().item()
    return correct / len(samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="Finch checkpoint (.h5) of the teacher")
    ap.add_argument("--model", default="tf_efficientnet_lite2")
    ap.add_argument("--data", default="Datasets/flowers", help="image folder with train/ and val/")
    ap.add_argument("--size", type=int, default=224, help="the teacher's input size (distill.teacher.image_size)")
    ap.add_argument("--student-size", type=int, default=128, help="the student's data.image_size")
    ap.add_argument("--view", choices=["own", "resized", "both"], default="both")
    ap.add_argument("--crop-pct", type=float, help="eval crop_pct of both views (default: the teacher model's)")
    ap.add_argument("--resize-mode", choices=["bilinear", "bicubic"], default="bilinear", help="for the resized view")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    classes, val = tr.image_folder(os.path.join(args.data, "val"))
    m = load_teacher(args.checkpoint, args.model, len(classes))
    mean, std, crop_pct, interp = tr.model_config(m)
    crop_pct = args.crop_pct or crop_pct
    if args.view in ("own", "both"):
        own = tr.EvalTransform(args.size, crop_pct, interp, mean, std)
        print(f"own view     {args.size} px:        top-1 {top1(m, val, own):.3f}  ({len(val)} photos)")
    if args.view in ("resized", "both"):
        student = tr.EvalTransform(args.student_size, crop_pct, interp, mean, std)
        acc = top1(m, val, student, (args.size, args.resize_mode))
        print(f"resized view {args.student_size} → {args.size} px ({args.resize_mode}): top-1 {acc:.3f}")


if __name__ == "__main__":
    main()
