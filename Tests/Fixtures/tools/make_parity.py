"""Compact PyTorch/timm parity fixtures for Finch's test suite.

Full reference bundles (../shared/tools/make_golden.py) store every weight, gradient and
AdamW result: hundreds of MB for the whole zoo. These fixtures instead fill the model with
*procedural* weights that Finch recomputes bit for bit (FinchIO/ProceduralWeights.swift), and
store only what the model computes:

  input [B,3,R,R] float32, target [B] int64
  eval.logits, train.logits, train.loss
  train.<buffer>                 every buffer after one train-mode forward (full)
  grad.norm.<param>              L2 norm of the full gradient (float64 sum, stored float32)
  grad.absmax.<param>            largest |value| of the full gradient (the tolerance's scale)
  grad.index.<param> int64 [K]   K probe positions (all positions when the tensor is small)
  grad.probe.<param>             gradient values there
  adamw.probe.<param>            parameter values there after one torch.optim.AdamW step
  grad.torch32err.<param>        how far PyTorch's own float32 gradient lands from the exact one,
                                 as max|g32 − g64| / max|g64| (the problem's conditioning)
Every reference value is computed in float64 ("exact") and stored as float32, so Finch is judged
against the true gradient, with PyTorch float32's own error as the measure of what float32 allows.
metadata: format=finch-parity-v1, weights=procedural, reference=float64, model, num_classes,
          resolution, batch, torch, timm, adamw (JSON), probes.

Procedural value of element i of tensor `name` (shape S):
  h = splitmix64(fnv1a64(utf8(name)) XOR (i * 0x9E3779B97F4A7C15))   (all mod 2^64)
  u = float32(h >> 40) / 2^24                                        (exact, in [0,1))
  running_var: u + 0.5 | running_mean: (2u-1)*0.1 | num_batches_tracked: 0
  rank >= 2: (2u-1) * float32(sqrt(3 / fan_in)), fan_in = S[1]*prod(S[2:])
  rank <= 1, name ends with ".weight": u + 0.5  (norm scales)
  other rank <= 1: (2u-1) * 0.1
Input: the same rule on name "input" with values (2u-1)*1.5; target: h("target", i) mod classes.

Usage: python make_parity.py OUTDIR model:res:classes:batch [...]
Needs torch, timm, safetensors, numpy (torchvision_stub.py stands in for a torchvision that
cannot load against a CPU-only torch).
"""
import json, math, os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_stub
torchvision_stub.install()
import torch, timm
from safetensors.torch import save_file

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
PROBES = 16


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def hashes(name, n):
    with np.errstate(over="ignore"):
        x = np.uint64(fnv1a64(name)) ^ (np.arange(n, dtype=np.uint64) * GOLDEN)
        z = x + GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def unit(name, n):
    return (hashes(name, n) >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)


def procedural(name, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    u = unit(name, n)
    one, two = np.float32(1), np.float32(2)
    if name.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    if name.endswith("running_var"):
        v = u + np.float32(0.5)
    elif name.endswith("running_mean"):
        v = (two * u - one) * np.float32(0.1)
    elif len(shape) >= 2:
        fan_in = shape[1] * int(np.prod(shape[2:]))
        v = (two * u - one) * np.float32(math.sqrt(3.0 / fan_in))
    elif name.endswith(".weight"):
        v = u + np.float32(0.5)
    else:
        v = (two * u - one) * np.float32(0.1)
    return v.astype(np.float32).reshape(shape)


def probe_indices(name, n):
    if n <= PROBES:
        return np.arange(n, dtype=np.int64)
    return np.sort((hashes("probe:" + name, PROBES) % np.uint64(n)).astype(np.int64))


def run(model_name, res, classes, batch, dtype):
    m = timm.create_model(model_name, pretrained=False, num_classes=classes)
    with torch.no_grad():
        for k, t in m.state_dict().items():
            t.copy_(torch.from_numpy(procedural(k, list(t.shape))))
    m = m.to(dtype)
    x = torch.from_numpy(((np.float32(2) * unit("input", batch * 3 * res * res) - np.float32(1)) * np.float32(1.5))
                         .reshape(batch, 3, res, res))
    y = torch.from_numpy((hashes("target", batch) % np.uint64(classes)).astype(np.int64))
    out = {"input": x, "target": y}
    m.eval()
    with torch.no_grad():
        out["eval.logits"] = m(x.to(dtype))
    m.train()
    logits = m(x.to(dtype))
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    out["train.logits"], out["train.loss"] = logits.detach(), loss.detach().reshape(1)
    for k, b in m.named_buffers():
        out[f"train.{k}"] = b.detach().clone()
    grads = {k: p.grad.detach().clone() for k, p in m.named_parameters()}
    hp = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
    torch.optim.AdamW(m.parameters(), **hp).step()
    after = {k: p.detach().clone() for k, p in m.named_parameters()}
    return out, grads, after


def fixture(model_name, res, classes, batch):
    ref, g64, a64 = run(model_name, res, classes, batch, torch.float64)
    r32, g32, _ = run(model_name, res, classes, batch, torch.float32)
    out = {k: (v.float() if v.is_floating_point() else v) for k, v in ref.items()}
    # PyTorch float32's own distance from exact for the forward outputs (absolute, and for
    # BatchNorm buffers relative to each buffer's largest value).
    for k in ("eval.logits", "train.logits", "train.loss"):
        out[f"{k}.torch32err"] = torch.tensor([float((r32[k].double() - ref[k]).abs().max())], dtype=torch.float32)
    buf_err = 0.0
    for k, v in ref.items():
        if k.startswith("train.") and (k.endswith("running_mean") or k.endswith("running_var")):
            buf_err = max(buf_err, float((r32[k].double() - v).abs().max() / max(float(v.abs().max()), 1e-12)))
    out["train.buffers.torch32err"] = torch.tensor([buf_err], dtype=torch.float32)
    for k, g in g64.items():
        idx = probe_indices(k, g.numel())
        scale = float(g.abs().max())
        out[f"grad.norm.{k}"] = torch.tensor([math.sqrt(float((g ** 2).sum()))], dtype=torch.float32)
        out[f"grad.absmax.{k}"] = torch.tensor([scale], dtype=torch.float32)
        err = float((g32[k].double() - g).abs().max()) / scale if scale > 0 else 0.0
        out[f"grad.torch32err.{k}"] = torch.tensor([err], dtype=torch.float32)
        out[f"grad.index.{k}"] = torch.from_numpy(idx)
        out[f"grad.probe.{k}"] = g.flatten()[torch.from_numpy(idx)].float().clone()
        out[f"adamw.probe.{k}"] = a64[k].flatten()[torch.from_numpy(idx)].float().clone()
    meta = dict(format="finch-parity-v1", weights="procedural", reference="float64", model=model_name,
                num_classes=str(classes), resolution=str(res), batch=str(batch), torch=torch.__version__,
                timm=timm.__version__, adamw=json.dumps({"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.05}),
                probes=str(PROBES), parameters=str(sum(g.numel() for g in g64.values())))
    return {k: v.contiguous() for k, v in out.items()}, meta


if __name__ == "__main__":
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(2)
    for spec in sys.argv[2:]:
        name, res, classes, batch = spec.split(":")
        t, meta = fixture(name, int(res), int(classes), int(batch))
        path = os.path.join(outdir, f"{name}_{res}_{classes}.safetensors")
        save_file(t, path, metadata=meta)
        print(path, "loss", float(t["train.loss"]), "bytes", os.path.getsize(path))
