"""Which ReLU/ReLU6 gate explains a parity gap: flips gates one at a time in float64 and shows what
each flip does to the gradients a failing check names.

A float32 run whose rounding puts a pre-activation on the other side of a kink than float64 does
opens (or closes) that gate and passes (or drops) one element's gradient; every gradient upstream
moves. Its numbers then look like a bug although the float32 value is as close to float64 as any
other order's. For each candidate (the `--top` pre-activations of a layer closest to a kink) this
prints the float64 value, PyTorch float32's values there under make_parity.py's first 12 ORDERS,
and, with that one gate flipped in the float64 backward, each named parameter's change (max |Δ|
of the gradient and |Δ| of its norm) to set beside `finch compare`'s max|Δ| for the failing checks.
Eval mode (BatchNorm on running statistics), as the ImageNet fixtures' evalgrad checks.

Usage: python gate_flip.py FIXTURE.safetensors --layer blocks.1.1.bn2.act [--layer ...] [--top 6]
           --param bn1.weight --param blocks.0.0.conv_pw.weight ...
FIXTURE is an ImageNet fixture (weights.* and input stored; see ../parity/imagenet/README.md).
Activation layers are any nn.ReLU/nn.ReLU6 module (e.g. blocks.1.1.bn2.act); the flip is gates.py's.
"""
import argparse, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_parity  # installs the torchvision stub
import make_pretrained_parity
import gates
import timm
import torch
from safetensors import safe_open


def load(path):
    f = safe_open(path, "pt")
    meta = f.metadata()
    state = {k[len("weights."):]: f.get_tensor(k) for k in f.keys() if k.startswith("weights.")}
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    x = f.get_tensor("input").float()
    y = torch.tensor([make_pretrained_parity.FLOWER_CLASSES[p.split("/")[0]] for p in meta["photos"].split(",")])
    return meta["model"], int(meta["num_classes"]), state, x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture")
    ap.add_argument("--layer", action="append", required=True)
    ap.add_argument("--param", action="append", required=True)
    ap.add_argument("--top", type=int, default=6)
    args = ap.parse_args()
    name, classes, state, x, y = load(args.fixture)

    m = timm.create_model(name, pretrained=False, num_classes=classes)
    m.load_state_dict(state)
    m = m.double().eval()
    plan = gates.flippable(m)

    def grads():
        m.zero_grad()
        torch.nn.functional.cross_entropy(m(x.double()), y).backward()
        return {k: p.grad.clone() for k, p in m.named_parameters()}

    base = grads()
    f32 = {}
    for order in make_parity.ORDERS[:12]:
        with make_parity.Order(order):
            m32, xx, _, _ = make_parity.prepared(name, classes, state, x, y, torch.float32, order)
            m32.eval()
            for layer in args.layer:
                mod = m32.get_submodule(layer)
                mod.register_forward_pre_hook(lambda mod, i, layer=layer: f32.setdefault(layer, []).append(
                    i[0].detach().contiguous().double().view(-1).clone()))
            with torch.no_grad():
                m32(xx)
    for layer in args.layer:
        a = plan["pre"][layer]
        upper = next(g.upper for g in m.modules() if isinstance(g, gates.Gate) and g.name == layer)
        dist = gates.kink_distance(a, upper).view(-1)
        for idx in dist.argsort()[:args.top].tolist():
            where = list(torch.unravel_index(torch.tensor(idx), a.shape))
            vals = [v[idx].item() for v in f32[layer]]
            plan["flip"] = {layer: [idx]}
            g = grads()
            plan["flip"] = None
            print(f"{layer} [n,c,h,w]={[int(w) for w in where]} float64 {a.view(-1)[idx].item():.3g}; "
                  f"float32 orders {min(vals):.3g} .. {max(vals):.3g}")
            for k in args.param:
                d = (g[k] - base[k]).abs().max().item()
                dn = abs(g[k].norm().item() - base[k].norm().item())
                print(f"    flipped: {k} max|Δ| {d:.3e}, norm |Δ| {dn:.3e}")


if __name__ == "__main__":
    main()
