#!/usr/bin/env python3
"""Runs an exported model in ONNX Runtime (and, when torch+timm import, the safetensors export in
timm) on exactly the inputs Finch evaluated (`finch evaluate --save-outputs`), and writes top-1 and
the largest logit difference against Finch's as JSON.

usage: onnx_check.py OUTPUTS.safetensors MODEL.onnx WEIGHTS.safetensors RESULT.json
"""
import json, os, sys

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file

outputs, onnx_path, weights_path, result_path = sys.argv[1:5]
d = load_file(outputs)
x, finch_logits, labels = d["input"], d["logits"], d["labels"]
opts = ort.SessionOptions()
opts.intra_op_num_threads = 2
sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
ort_logits = np.concatenate([sess.run(None, {name: x[i:i + 32]})[0] for i in range(0, len(x), 32)])
result = {"images": int(len(labels)), "finch_top1": float((finch_logits.argmax(1) == labels).mean()),
          "ort_top1": float((ort_logits.argmax(1) == labels).mean()),
          "ort_max_abs_diff": float(np.abs(ort_logits - finch_logits).max()),
          "ort_argmax_agree": float((ort_logits.argmax(1) == finch_logits.argmax(1)).mean()),
          "logit_scale": float(np.abs(finch_logits).max()), "onnxruntime": ort.__version__}
try:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "tools"))
    import torchvision_stub
    torchvision_stub.install()
    import torch, timm
    from safetensors import safe_open
    from safetensors.torch import load_file as load_torch
    with safe_open(weights_path, "pt") as f:
        meta = f.metadata()
    m = timm.create_model(meta["model"], num_classes=int(meta["num_classes"]))
    m.load_state_dict(load_torch(weights_path), strict=True)
    m.eval()
    torch.set_num_threads(2)
    with torch.no_grad():
        t = np.concatenate([m(torch.from_numpy(x[i:i + 32])).numpy() for i in range(0, len(x), 32)])
    result.update(timm_top1=float((t.argmax(1) == labels).mean()), timm_max_abs_diff=float(np.abs(t - finch_logits).max()))
except ImportError:
    pass
with open(result_path + ".tmp", "w") as f:
    json.dump(result, f, indent=1)
os.replace(result_path + ".tmp", result_path)
print(json.dumps(result))
