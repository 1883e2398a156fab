"""ReLU/ReLU6 gates near their kink: recording pre-activations and flipping one gate's backward.

A float32 order whose rounding puts a pre-activation on the other side of a kink than float64 opens
(or closes) that gate and passes (or drops) one element's gradient, and every gradient upstream
moves; the float32 answer is then as valid as any other order's, yet far from float64's. Shared by
make_parity.py (the fixtures' alternative truths, flip.*) and gate_flip.py (tracing a gap by hand).

Gates are the model's nn.ReLU / nn.ReLU6 modules (timm's act layers, BatchNormAct2d.act, ResNet's
act1/act2); functional relu calls, hard-swish/hard-sigmoid kinks and max-pool ties are not covered.
A module called more than once per forward is keyed name#k for its k-th call (k > 0).
"""
import torch

KINDS = (torch.nn.ReLU, torch.nn.ReLU6)


def upper_of(mod):
    return 6.0 if isinstance(mod, torch.nn.ReLU6) else float("inf")


def kink_distance(a, upper):
    """Distance of each pre-activation to the nearest kink (0, and `upper` for ReLU6)."""
    return a.abs() if upper == float("inf") else torch.minimum(a.abs(), (a - upper).abs())


class Recorder:
    """Pre-hooks on every gate of a model: while `on`, stores each gate's input (float64, NCHW,
    batch order restored by `back`) in `pre` under its key. Leaves the model's own kernels alone
    (no module is replaced), so a float32 run records exactly the order it samples."""

    def __init__(self, model, back=lambda t: t):
        self.pre, self.upper, self.calls, self.on, self.back = {}, {}, {}, False, back
        model.register_forward_pre_hook(lambda *_: self.calls.clear())
        for name, mod in model.named_modules():
            if isinstance(mod, KINDS):
                mod.register_forward_pre_hook(lambda mod, i, name=name: self._record(name, mod, i[0]))

    def _record(self, name, mod, a):
        k = self.calls.get(name, 0)
        self.calls[name] = k + 1
        if self.on:
            key = name if k == 0 else f"{name}#{k}"
            self.pre[key] = self.back(a.detach().double()).contiguous().clone()
            self.upper[key] = upper_of(mod)


class FlippableGate(torch.autograd.Function):
    """ReLU/ReLU6 whose backward mask can have elements inverted (forward values unchanged)."""

    @staticmethod
    def forward(ctx, a, upper, flip):
        # Row-major, so `flip` (flat indices) names the elements Recorder's contiguous copy has there.
        mask = ((a > 0) & (a < upper)).contiguous()
        if flip:
            at = torch.tensor(flip, dtype=torch.long)
            mask.view(-1)[at] = ~mask.view(-1)[at]
        ctx.save_for_backward(mask)
        return a.clamp(0, upper)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask, None, None


class Gate(torch.nn.Module):
    """Stands in for a ReLU/ReLU6 module; flips the elements `plan["flip"] = {key: [flat index, ...]}`."""

    def __init__(self, name, upper, plan):
        super().__init__()
        self.name, self.upper, self.plan = name, upper, plan

    def forward(self, a):
        k = self.plan["calls"].get(self.name, 0)
        self.plan["calls"][self.name] = k + 1
        key = self.name if k == 0 else f"{self.name}#{k}"
        self.plan["pre"][key] = a.detach().clone()
        return FlippableGate.apply(a, self.upper, (self.plan["flip"] or {}).get(key))


def flippable(model):
    """Replaces every gate of `model` by a Gate; returns the plan that steers them."""
    plan = {"pre": {}, "flip": None, "calls": {}}
    model.register_forward_pre_hook(lambda *_: plan["calls"].clear())
    targets = [(n, mod) for n, mod in model.named_modules() if isinstance(mod, KINDS)]
    for n, mod in targets:
        parent, _, leaf = n.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, Gate(n, upper_of(mod), plan))
    return plan
