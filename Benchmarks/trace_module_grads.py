"""Where a gradient's float32 error enters: float64 truth and PyTorch float32's per-module noise
beside Finch's values, module by module, for one procedural parity fixture.

    python3 trace_module_grads.py MODEL RES CLASSES BATCH OUT.safetensors PREFIX [PREFIX ...]
    python3 trace_module_grads.py --compare OUT.safetensors FINCH.safetensors
    python3 trace_module_grads.py --local OUT.safetensors FINCH_RESET.safetensors [MORE_FINCH_RESET ...]

The first form runs timm's MODEL with the fixture's procedural weights and input
(Tests/Fixtures/tools/make_parity.py) in float64 and under make_parity's 14 float32 orders, and
stores, for every module whose name starts with one of the PREFIXes, its output (`fwd.<name>`) and
the loss's gradient with respect to that output (`grad.<name>`) in float64, plus PyTorch's noise
there: the largest |f32 - f64| over the orders (`noise.fwd.<name>`, `noise.grad.<name>`), and the
same for every parameter gradient (`pgrad.`, `noise.pgrad.`). The second form reads a file of
Finch's values under the same names (float32) and prints, in backward order, each one's distance
to float64 over PyTorch's noise: the first row where the ratio climbs past 3 is where the error
enters. The Finch side is Benchmarks/trace_mobilevit_taps.swift (mobilevit_xxs_64_5).

An error that builds up over many ops shows in no single row. The third form compares each
segment's own error: Finch files made with FINCH_TRACE_RESET=OUT (every tap passes on the float64
gradient rounded to float32, so what reaches a tap is the error of the ops since the previous one),
and PyTorch's 14 orders run the same way here. Per tap: the error's component along the float64
gradient (`coh`, relative: what moves a norm), its relative L2 size, and max|error| over PyTorch's.
Where several names share one tensor, PyTorch's innermost module and Finch's outermost tap receive
the segment's gradient (the others see the reset value).
"""
import os
import sys

import numpy as np

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "tools")
sys.path.insert(0, TOOLS)


def traced(model_name, classes, state, x, y, dtype, order, prefixes):
    import torch
    import make_parity as mp
    with mp.Order(order):
        m, x, y, _ = mp.prepared(model_name, classes, state, x, y, dtype, order)
        m.train()
        fwd, grad, handles = {}, {}, []
        batch = x.shape[0]

        def back(t):
            # A reversed batch also reverses the transformer's [B·p², N, C] sequences, by sample.
            if not (order and order[3]):
                return t
            return t.reshape(batch, -1, *t.shape[1:]).flip(0).reshape(t.shape)

        def hook(name):
            def f(_, __, out):
                # In-place activations after a module would change `out` later: keep a copy now.
                fwd[name] = back(out.detach().clone())
                out.register_hook(lambda g: grad.__setitem__(name, back(g.detach().clone())))
            return f

        for name, mod in m.named_modules():
            if name and any(name.startswith(p) for p in prefixes):
                handles.append(mod.register_forward_hook(hook(name)))
        loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        for h in handles:
            h.remove()
        pgrad = {k: p.grad.detach().clone() for k, p in m.named_parameters()}
        # Channels-last outputs compare as NCHW values; the order of names is the forward order.
        return ({k: v.contiguous() for k, v in fwd.items()}, {k: v.contiguous() for k, v in grad.items()},
                pgrad, list(fwd))


def reference(model_name, res, classes, batch, out, prefixes):
    import torch
    import timm
    import make_parity as mp
    from safetensors.torch import save_file
    m = timm.create_model(model_name, pretrained=False, num_classes=classes)
    state = mp.procedural_state(m)
    x, y = mp.procedural_batch(res, classes, batch)
    f64, g64, p64, names = traced(model_name, classes, state, x, y, torch.float64, None, prefixes)
    noise = {}

    def note(key, a, b):
        noise[key] = max(noise.get(key, 0.0), float((a.double() - b).abs().max()))

    for order in mp.ORDERS:
        f32, g32, p32, _ = traced(model_name, classes, state, x, y, torch.float32, order, prefixes)
        for k in f64:
            note(f"fwd.{k}", f32[k], f64[k])
            if k in g64:
                note(f"grad.{k}", g32[k], g64[k])
        for k in p64:
            note(f"pgrad.{k}", p32[k], p64[k])
    t = {f"fwd.{k}": v for k, v in f64.items()}
    t.update({f"grad.{k}": v for k, v in g64.items()})
    t.update({f"pgrad.{k}": v for k, v in p64.items()})
    t.update({f"noise.{k}": torch.tensor([v], dtype=torch.float64) for k, v in noise.items()})
    save_file(t, out, metadata={"model": model_name, "resolution": str(res), "classes": str(classes),
                                "batch": str(batch), "order": " ".join(names)})
    print(out, len(t), "tensors")


def compare(ref_path, ours_path):
    from safetensors import safe_open
    ref, ours = safe_open(ref_path, "np"), safe_open(ours_path, "np")
    names = ref.metadata()["order"].split()
    have = set(ours.keys())

    def row(key):
        if key not in have:
            return None
        a, b = ours.get_tensor(key).astype(np.float64), ref.get_tensor(key)
        if a.shape != b.shape:
            return f"{key}: shape {a.shape} vs {b.shape}"
        err = float(np.abs(a - b).max())
        noise = float(ref.get_tensor("noise." + key)[0])
        scale = float(np.abs(b).max())
        rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))
        ratio = err / noise if noise > 0 else float("inf")
        return f"{ratio:8.2f}  err {err:.3e}  noise {noise:.3e}  scale {scale:.3e}  rel2 {rel:.2e}  {key}"

    print("backward (output gradients, last module first):")
    for n in reversed(names):
        r = row(f"grad.{n}")
        if r:
            print("  " + r)
    print("forward (outputs):")
    for n in names:
        r = row(f"fwd.{n}")
        if r:
            print("  " + r)
    print("parameter gradients:")
    for k in ref.keys():
        if k.startswith("pgrad."):
            r = row(k)
            if r:
                print("  " + r)


def local(ref_path, finch_paths):
    import torch
    import timm
    import make_parity as mp
    from safetensors import safe_open
    ref = safe_open(ref_path, "np")
    meta = ref.metadata()
    model_name, res, classes, batch = meta["model"], int(meta["resolution"]), int(meta["classes"]), int(meta["batch"])
    finch = [(os.path.basename(p), safe_open(p, "np")) for p in finch_paths]
    have = set(ref.keys())
    taps = [k[5:] for k in finch[0][1].keys() if k.startswith("grad.") and k in have]
    m0 = timm.create_model(model_name, pretrained=False, num_classes=classes)
    state = mp.procedural_state(m0)
    X, Y = mp.procedural_batch(res, classes, batch)
    seen = {}
    for order in mp.ORDERS:
        with mp.Order(order):
            m, x, y, _ = mp.prepared(model_name, classes, state, X, Y, torch.float32, order)
            m.train()
            n = x.shape[0]

            def back(t):
                return t.reshape(n, -1, *t.shape[1:]).flip(0).reshape(t.shape) if order[3] else t
            got, mods = {}, dict(m.named_modules())

            def hook(name):
                def f(_, __, out):
                    exact = torch.from_numpy(ref.get_tensor("grad." + name)).float()

                    def h(g):
                        got[name] = back(g.detach().clone()).contiguous()
                        r = back(exact)
                        return r.contiguous(memory_format=torch.channels_last) if g.dim() == 4 and not g.is_contiguous() else r
                    out.register_hook(h)
                return f
            handles = [mods[t].register_forward_hook(hook(t)) for t in taps if t in mods]
            torch.nn.functional.cross_entropy(m(x), y).backward()
            for h in handles:
                h.remove()
        for t, g in got.items():
            a, b = g.double().numpy(), ref.get_tensor("grad." + t)
            seen.setdefault(t, []).append((float(((a - b) * b).sum() / (b * b).sum()),
                                           float(np.linalg.norm(a - b) / np.linalg.norm(b)), float(np.abs(a - b).max())))
    print(f"{'tap':45s} PyTorch coh [min, max]  rel2  max|err| | " + " | ".join(f"{n}: coh rel2 max/PyTorch's" for n, _ in finch))
    for name in reversed(meta["order"].split()):
        if name not in seen:
            continue
        t, b = np.array(seen[name]), ref.get_tensor("grad." + name)
        row = f"{name:45s} [{t[:, 0].min():+.1e}, {t[:, 0].max():+.1e}] {t[:, 1].max():.1e} {t[:, 2].max():.1e} |"
        for _, f in finch:
            d = f.get_tensor("grad." + name).astype(np.float64) - b
            row += f" {(d * b).sum() / (b * b).sum():+.1e} {np.linalg.norm(d) / np.linalg.norm(b):.1e} {np.abs(d).max() / t[:, 2].max():.2f} |"
        print(row)


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "--local":
        local(sys.argv[2], sys.argv[3:])
    else:
        model, res, classes, batch, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        reference(model, res, classes, batch, out, sys.argv[6:])
