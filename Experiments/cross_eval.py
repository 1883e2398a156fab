#!/usr/bin/env python3
"""Finch-trained checkpoints scored by both sides' evaluation: how much of a Finch − timm gap is
the model and how much the val preprocessing.

For each Finch checkpoint (.h5) it compares three evaluations of the same weights on val:
  finch      `finch evaluate --save-outputs` (Finch's resampling, Finch's model);
  timm@finch timm's model on the input tensors Finch saved (the two models' numerics alone);
  timm       timm's model on `timm_reference.py`'s eval transform (Pillow's 8-bit resampling: what
             the timm column of RESULTS.md is scored with).
It prints top-1 and balanced accuracy of each, and how many val photos change their predicted
class from one evaluation to the next. Per-class accuracy of the timm evaluation is printed with
--per-class.

  python3 Experiments/cross_eval.py --model tf_efficientnet_lite0 --size 128 CKPT [CKPT ...]
  (needs a release build: swift build -c release --product finch)
"""
import argparse, os, subprocess, sys, tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timm_reference as tr  # noqa: E402  (transforms, folder reader, model config)
from teacher_view import load_teacher  # noqa: E402  (a Finch checkpoint into its timm model)
import torch  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402


def predictions(m, batches):
    out = []
    with torch.no_grad():
        for x in batches:
            out.append(m(x).argmax(1).numpy())
    return np.concatenate(out)


def scores(pred, labels, k):
    per_class = [float((pred[labels == c] == c).mean()) for c in range(k)]
    return float((pred == labels).mean()), float(np.mean(per_class)), per_class


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="Finch checkpoints (.h5)")
    ap.add_argument("--model", default="tf_efficientnet_lite0")
    ap.add_argument("--size", type=int, default=128, help="the run's data.image_size")
    ap.add_argument("--data", default="Datasets/flowers", help="image folder with val/")
    ap.add_argument("--finch", default=".build/release/finch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--per-class", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    classes, val = tr.image_folder(os.path.join(args.data, "val"))
    labels = np.array([l for _, l in val])
    k = len(classes)
    print(f"{len(val)} val photos, {k} classes; columns: top-1 / balanced accuracy; "
          "'changed' counts photos whose predicted class differs")
    for ck in args.checkpoints:
        m = load_teacher(ck, args.model, k)
        with tempfile.TemporaryDirectory() as tmp:
            saved = os.path.join(tmp, "outputs.safetensors")
            subprocess.run([args.finch, "evaluate", "--checkpoint", ck, "--data", args.data, "--save-outputs", saved],
                           check=True, stdout=subprocess.DEVNULL)
            f = load_file(saved)
        if not np.array_equal(f["labels"], labels):
            sys.exit(f"{ck}: Finch's val order or labels differ from timm_reference.py's folder reader")
        p_finch = f["logits"].argmax(1)
        x = torch.from_numpy(f["input"])
        if list(x.shape[2:]) != [args.size, args.size]:
            sys.exit(f"{ck}: Finch evaluated at {list(x.shape[2:])}, not --size {args.size}")
        p_same = predictions(m, torch.split(x, 64))
        mean, std, crop_pct, interp = tr.model_config(m)
        transform = tr.EvalTransform(args.size, crop_pct, interp, mean, std)
        timm_inputs = [torch.stack([transform(tr.Image.open(p).convert("RGB")) for p, _ in val[i:i + 64]])
                       for i in range(0, len(val), 64)]
        p_timm = predictions(m, timm_inputs)
        # Normalised values one 8-bit level apart differ by 1/(255·std) ≥ 1/255 here; 1e-6 is rounding.
        differing = int((torch.abs(torch.cat(timm_inputs) - x) > 1e-6).sum())
        row = []
        for name, p in (("finch", p_finch), ("timm@finch", p_same), ("timm", p_timm)):
            t, b, _ = scores(p, labels, k)
            row.append(f"{name} {t:.3f} / {b:.3f}")
        print(f"{ck}\n  " + "   ".join(row) +
              f"\n  input values differing (Finch's preprocessing against Pillow's): {differing} of {x.numel()}"
              f"\n  changed: finch → timm@finch {int((p_finch != p_same).sum())}, "
              f"timm@finch → timm {int((p_same != p_timm).sum())} "
              f"(right → wrong {int(((p_same == labels) & (p_timm != labels)).sum())}, "
              f"wrong → right {int(((p_same != labels) & (p_timm == labels)).sum())})")
        if args.per_class:
            _, _, pc_f = scores(p_finch, labels, k)
            _, _, pc_t = scores(p_timm, labels, k)
            print("  per class (finch → timm): " + ", ".join(f"{c} {a:.3f} → {b:.3f}" for c, a, b in zip(classes, pc_f, pc_t)))


if __name__ == "__main__":
    main()
