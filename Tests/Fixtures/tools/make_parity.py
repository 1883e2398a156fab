"""Compact PyTorch/timm parity fixtures for Finch's test suite.

Full reference bundles (../shared/tools/make_golden.py) store every weight, gradient and
AdamW result: hundreds of MB for the whole zoo. These fixtures instead fill the model with
*procedural* weights that Finch recomputes bit for bit (FinchNN/ProceduralWeights.swift), and
store only what the model computes:

  target [B] int64               (the input is procedural: see below)
  f64.eval.logits, f64.train.logits, f64.train.loss      float64, the exact answer
  f64.train.<buffer>             every BatchNorm running_mean/var after one train-mode forward
  train.<...>num_batches_tracked int64
  grad.absmax.<param>            largest |value| of the full float64 gradient
  grad.index.<param> int64 [K]   K probe positions (all positions when the tensor is small)
  f64.grad.probe.<param>         float64 gradient values there
  f64.grad.norm.<param>          L2 norm of the full float64 gradient
  adamw.probe.<param>            parameter values there after one torch.optim.AdamW step (float64 run)
  noise.<key>                    float64 [1]: PyTorch float32's own distance from float64 for that
                                 output, the largest over the float32 orders listed below:
    noise.eval.logits, noise.train.logits, noise.train.loss, noise.train.<buffer>: max|f32 - f64|
    noise.grad.<param>:      max|g32 - g64| over the whole tensor
    noise.grad.norm.<param>: | |g32| - |g64| |
  evalgrad.absmax.<param>, f64.evalgrad.probe.<param>, f64.evalgrad.norm.<param>, noise.evalgrad.<param>,
  noise.evalgrad.norm.<param>    optional (make_pretrained_parity.py): the same for the gradients of
                                 the loss in eval mode (BatchNorm on running statistics), at grad.index

Float32 orders sampled for noise.* (ORDERS): every combination of
  threads 1, 2, 3     torch.set_num_threads: oneDNN and ATen split convolutions, GEMMs and the
                      BatchNorm/mean reductions into per-thread partial sums, so the thread count
                      changes where float32 rounds (Finch runs its suite on 1, 2 and 3 threads too);
  mkldnn on, off      oneDNN's convolution kernels vs ATen's own (im2col + BLAS GEMM, depthwise and
                      slow_conv2d): different blockings of the same dot products;
  NCHW, channels-last memory_format: different kernels and reduction orders over channels/pixels;
and two more with the batch reversed (threads 1, NCHW, mkldnn on; threads 2, channels-last, mkldnn
off): the samples' per-sample gradients and BatchNorm's batch statistics are summed in another
order (outputs are un-reversed before comparing; BatchNorm's statistics are the same math). 14
float32 runs, each an answer PyTorch itself gives for the same model and input depending only on
the machine's core count, the build (with or without oneDNN), a memory-format flag or the order of
the samples in the batch, so each is a legitimate float32 result; the
noise is how far the farthest of them lands from float64. Near a ReLU/ReLU6 kink or a max-pool
near-tie one order can land on float64's side by luck; two orders (the v2 fixtures before
2026-12-06) were too few to see that, 14 see it far more often. The float64 truth runs once.
Models with SiLU (MobileViT) get 12 more orders (SWISH_ORDERS: every threads x mkldnn x layout
combination again) in which every nn.SiLU is timm's own Swish layer, x * sigmoid(x) in
PyTorch ops (what timm builds where the fused silu kernel is missing): all other orders run one
fused elementwise kernel, so they never vary that rounding, and on mobilevit_xxs_64_5 that left a
gradient norm's noise 2.15x smaller than this valid float32 answer's (Benchmarks/AccumulationAccuracy.md).

The eval-mode gradients of the ImageNet files (evalgrad.*) get 24 more orders (EVAL_SPLIT_ORDERS:
every threads x mkldnn x layout combination with the batch split into micro-batches of 1 and of 2,
gradients accumulated, each micro-batch's mean loss divided by their count). BatchNorm on running
statistics makes that the same math as one batch, and gradient accumulation is how PyTorch users run
a batch that does not fit; the whole-batch orders all sum the per-sample weight gradients inside one
convolution backward, so none of them varies that order. On tf_efficientnet_lite2_imagenet_128_8 the
14 orders put evalgrad.norm.blocks.2.0.conv_dw.weight's noise at 1.09e-5; micro-batches of 1 (2
threads, channels-last, oneDNN) land 1.98e-5 from float64.

Gate flips (gates.py): the sampled orders can all land on one side of a ReLU/ReLU6 kink that another
valid order crosses. So every float32 run also records each gate's input, and per element the
spread max over the orders of |pre32 - pre64| (train forward for grad.*, eval forward for evalgrad.*).
A gate is admissible when |pre64 - kink| <= 3 x that element's spread (spread > 0, GATE_RULE_FACTOR):
the rule accepts Finch on any value within 3x PyTorch's order noise of float64, the gate's input
included, so a gate that close to its kink may open in an answer the rule accepts everywhere else
(without the factor the rule contradicts itself: resnet18_96_10's layer4.1.bn1 gate, 1.22 spreads
from its kink, failed 17 checks while Finch's error at that element, at most 1.8 spreads over 12
path x BLAS x thread runs and 0.97 in RMS, was within the rule). The factor admits gates only as
alternative truths that the whole mode must then match, never as noise. The criterion is per
element, so it does not admit a gate whose float64 value sits farther from the kink than the rule
lets Finch's own rounding reach there. Each truth is a set of admissible gates flipped together in
the float64 backward (forward values unchanged): the closest single gates (closest to the kink
relative to their spread first; GATE_CAP per mode: every eval gate, the closest 12 train gates),
then every pair among the GATE_PAIR_K = 8 closest of each mode, each pair in its own float64 run
(flips in different layers do not add: a cross term through the path between them). Each is
another exact answer, an alternative truth that Finch may match instead of the base one, within
the same 14-order noise (noise.* holds the orders only, never a flip's effect):
  flip.<j>.probe   float64 [sum of the probe counts, in flips.params order]: truth j's change to
                   every gradient probe of its mode (f64.grad.probe / f64.evalgrad.probe)
  flip.<j>.norm    float64 [len(flips.params)]: each gradient's float64 norm under truth j
The probes store deltas; the norms store the flipped value, as a norm does not add. Metadata flips
(JSON): criterion, cap, pairs (the rules above), within (admissible gates per mode), params,
admissible (per mode, every admissible gate as [key, [n,c,h,w], kink, pre64, spread], closest
first: what `finch compare --gates` looks up), and per truth j (truths[j]) its mode, its gates
(each {gate, index, kink, pre64, spread}) and the three probe or norm checks it moves most relative
to their noise, as [check, |change|, noise]. Files made before 2026-12-07 list single flips as
gates[j] = {mode, gate, index, ...}; Finch reads both.
metadata: format=finch-parity-v2, weights=procedural, input=procedural, reference=float64, model,
          num_classes, resolution, batch, torch, timm, adamw (JSON), probes, noise (the orders sampled),
          noise_argmax (JSON: how many outputs each order was the farthest for),
          flips (JSON, the gate flips above).

Format v1 (finch-parity-v1, still read by Finch) stored the input, float32-rounded references under
the same names without "f64.", and one path's error as grad.torch32err.<param> etc.

Procedural value of element i of tensor `name` (shape S):
  h = splitmix64(fnv1a64(utf8(name)) XOR (i * 0x9E3779B97F4A7C15))   (all mod 2^64)
  u = float32(h >> 40) / 2^24                                        (exact, in [0,1))
  running_var: u + 0.5 | running_mean: (2u-1)*0.1 | num_batches_tracked: 0
  rank >= 2: (2u-1) * float32(sqrt(3 / fan_in)), fan_in = S[1]*prod(S[2:])
  rank <= 1, name ends with ".weight": u + 0.5  (norm scales)
  other rank <= 1: (2u-1) * 0.1
Input: the same rule on name "input" with values (2u-1)*1.5; target: h("target", i) mod classes.

Usage: python make_parity.py OUTDIR model:res:classes:batch[:probes] [...]
Needs torch, timm, safetensors, numpy (torchvision_stub.py stands in for a torchvision that
cannot load against a CPU-only torch).
"""
import itertools, json, math, os, sys
import numpy as np

# Threads 2 and 3 sample summation orders, not speed: on a shared machine spinning OpenMP workers
# only steal cores, so idle workers sleep (must be set before torch loads OpenMP).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# MKL (ATen's BLAS when oneDNN is off) may pick its blocking by the buffers' alignment unless told
# to reproduce (its conditional numerical reproducibility); STRICT keeps the CPU's own kernels and
# makes an order's values independent of where the buffers lie (must precede torch). No such
# dependence was measured here; it guards the admissible gates, which hinge on single elements.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_stub
torchvision_stub.install()
import torch, timm
from safetensors.torch import save_file
import gates

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


def probe_indices(name, n, probes=PROBES):
    if n <= probes:
        return np.arange(n, dtype=np.int64)
    return np.sort((hashes("probe:" + name, probes) % np.uint64(n)).astype(np.int64))


def procedural_state(m):
    return {k: torch.from_numpy(procedural(k, list(t.shape))) for k, t in m.state_dict().items()}


def procedural_batch(res, classes, batch):
    x = torch.from_numpy(((np.float32(2) * unit("input", batch * 3 * res * res) - np.float32(1)) * np.float32(1.5))
                         .reshape(batch, 3, res, res))
    y = torch.from_numpy((hashes("target", batch) % np.uint64(classes)).astype(np.int64))
    return x, y


ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)


# (threads, mkldnn, channels_last, reversed batch): see the module doc for why each is legitimate.
ORDERS = [(t, mk, cl, False) for t in (1, 2, 3) for mk in (True, False) for cl in (False, True)] + \
         [(1, True, False, True), (2, False, True, True)]


# (threads, mkldnn, channels_last, reversed batch, SiLU as timm's Swish): for models with nn.SiLU only.
SWISH_ORDERS = [(t, mk, cl, False, True) for t in (1, 2, 3) for mk in (True, False) for cl in (False, True)]

# (..., micro-batch size): eval-mode gradients only (evalgrad.*), accumulated over micro-batches of
# 1 and 2 samples, each micro-batch's mean loss divided by the number of micro-batches (gradient
# accumulation as PyTorch users write it). With BatchNorm on its running statistics this is the same
# math as one batch; only the order of the per-sample sums and the convolutions' blocking for a
# smaller batch change. Train mode is left out: there batch statistics make it another problem.
EVAL_SPLIT_ORDERS = [(t, mk, cl, False, False, split) for split in (1, 2)
                     for t in (1, 2, 3) for mk in (True, False) for cl in (False, True)]


def orders_for(model_name, classes):
    """ORDERS, plus SWISH_ORDERS when the model has an nn.SiLU (see the module doc)."""
    m = timm.create_model(model_name, pretrained=False, num_classes=classes)
    return ORDERS + (SWISH_ORDERS if any(isinstance(mod, torch.nn.SiLU) for mod in m.modules()) else [])


def order_name(order):
    t, mk, cl, rev = order[:4]
    swish = len(order) > 4 and order[4]
    split = micro_batch(order)
    return (f"t{t}-{'mkldnn' if mk else 'aten'}-{'cl' if cl else 'nchw'}{'-rev' if rev else ''}{'-swish' if swish else ''}"
            + (f"-mb{split}" if split else ""))


def micro_batch(order):
    """The micro-batch size of an EVAL_SPLIT_ORDERS order, None for one whole batch."""
    return order[5] if order and len(order) > 5 else None


def with_swish(m):
    """Every nn.SiLU of `m` replaced by timm's Swish (x * sigmoid(x), not the fused kernel)."""
    from timm.layers.activations import Swish
    for name, mod in list(m.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, torch.nn.SiLU):
                setattr(mod, child_name, Swish())
    return m


class Order:
    """Runs a block under one float32 order: thread count and oneDNN switch, restored afterwards."""

    def __init__(self, order):
        self.threads, self.mkldnn = (order[0], order[1]) if order else (None, None)

    def __enter__(self):
        self.saved = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        self.flags = torch.backends.mkldnn.flags(enabled=self.mkldnn if self.mkldnn is not None else True)
        self.flags.__enter__()

    def __exit__(self, *exc):
        self.flags.__exit__(*exc)
        torch.set_num_threads(self.saved)


def prepared(model_name, classes, state, x, y, dtype, order):
    """The model and batch in `dtype`, laid out and ordered as `order` says; `back` undoes the batch order."""
    m = timm.create_model(model_name, pretrained=False, num_classes=classes)
    m.load_state_dict(state)
    m = m.to(dtype)
    if order and len(order) > 4 and order[4]:
        m = with_swish(m)
    # NCHW unless the order says channels-last: PyTorch's kernels follow the input's strides.
    x = x.to(dtype).contiguous()
    back = lambda t: t
    if order and order[3]:
        flip = torch.arange(x.shape[0] - 1, -1, -1)
        x, y, back = x[flip], y[flip], (lambda t: t[flip])
    if order and order[2]:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return m, x, y, back


def eval_grads(model_name, classes, state, x, y, dtype, order=None, record=None):
    """Gradients of the loss with the model in eval mode (BatchNorm on its running statistics);
    with `record` (a dict), the gates' pre-activations of that forward go to record["eval"]."""
    with Order(order):
        m, x, y, back = prepared(model_name, classes, state, x, y, dtype, order)
        rec = gates.Recorder(m, back) if record is not None else None
        m.eval()
        if rec:
            rec.on = True
        split = micro_batch(order) or x.shape[0]
        steps = -(-x.shape[0] // split)
        pres = []
        for s in range(0, x.shape[0], split):
            (torch.nn.functional.cross_entropy(m(x[s:s + split]), y[s:s + split]) / steps).backward()
            if rec:
                pres.append(dict(rec.pre))
        if rec:
            # Recorder keeps one forward's inputs; the micro-batches' are joined along the batch.
            record["eval"] = ({k: torch.cat([p[k] for p in pres]) for k in pres[0]}, rec.upper)
        return {k: p.grad.detach().clone() for k, p in m.named_parameters()}


def run(model_name, classes, state, x, y, dtype, order=None, adamw=False, record=None):
    """One eval forward, one train forward + backward (+ one AdamW step) from `state` in `dtype`;
    with `record` (a dict), the gates' pre-activations of the train forward go to record["train"]."""
    with Order(order):
        m, x, y, back = prepared(model_name, classes, state, x, y, dtype, order)
        rec = gates.Recorder(m, back) if record is not None else None
        out = {}
        m.eval()
        with torch.no_grad():
            out["eval.logits"] = back(m(x))
        m.train()
        if rec:
            rec.on = True
        logits = m(x)
        if rec:
            rec.on = False
            record["train"] = (rec.pre, rec.upper)
        loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        out["train.logits"], out["train.loss"] = back(logits.detach()), loss.detach().reshape(1)
        for k, b in m.named_buffers():
            out[f"train.{k}"] = b.detach().clone()
        grads = {k: p.grad.detach().clone() for k, p in m.named_parameters()}
        after = None
        if adamw:
            torch.optim.AdamW(m.parameters(), **ADAMW).step()
            after = {k: p.detach().clone() for k, p in m.named_parameters()}
        return out, grads, after


def scalar64(v):
    return torch.tensor([float(v)], dtype=torch.float64)


class Noise:
    """The largest distance to float64 per output over the float32 orders, and which order gave it."""

    def __init__(self):
        self.worst, self.by = {}, {}

    def note(self, key, dist, label):
        if dist > self.worst.get(key, -1.0):
            self.worst[key], self.by[key] = dist, label

    def outputs(self, ref, order, out):
        for k, v in ref.items():
            if not k.endswith("num_batches_tracked"):
                self.note(k, float((out[k].double() - v).abs().max()), order_name(order))

    def gradients(self, prefix, g64, label, grads):
        for k, g in g64.items():
            self.note(f"{prefix}.{k}", float((grads[k].double() - g).abs().max()), label)
            self.note(f"{prefix}.norm.{k}", abs(float(grads[k].double().norm()) - float(g.norm())), label)

    def counts(self):
        """How many outputs each order is the farthest for (ties go to the first one run)."""
        c = {}
        for o in self.by.values():
            c[o] = c.get(o, 0) + 1
        return c


# Single flips per mode at most, None for every admissible gate: each costs one float64 forward +
# backward and 8 bytes per probe. Eval mode (the ImageNet files) keeps them all (Lite2: 43); train
# mode, with hundreds admissible at batch statistics (Lite2: 470), the closest 12.
GATE_CAP = {"train": 12, "eval": None}
# Pairs: every pair among the GATE_PAIR_K closest admissible gates of each mode is flipped together
# in its own float64 run (flips in different layers do not add). A stated rule, not the pair some
# float32 run happened to flip: K = 8 gives 28 pairs per mode.
GATE_PAIR_K = 8
# The rule's own factor: Finch may sit 3x PyTorch's order noise from float64 on any value, a gate's
# input included, so a gate that close to its kink may open in an answer the rule otherwise accepts.
GATE_RULE_FACTOR = 3.0


class Spread:
    """PyTorch float32's own per-element spread at every gate: max over the orders of
    |pre32 - pre64| of the gate's input, per mode (train: batch statistics; eval: running ones)."""

    def __init__(self, pre64):
        self.pre64 = pre64  # mode -> (pre, upper)
        self.spread = {mode: {k: torch.zeros_like(a) for k, a in pre.items()} for mode, (pre, _) in pre64.items()}

    def update(self, mode, pre32):
        for k, s in self.spread[mode].items():
            torch.maximum(s, (pre32[0][k] - self.pre64[mode][0][k]).abs(), out=s)

    def within(self, mode):
        """Admissible gates: distance of pre64 to the kink <= 3 x that element's spread (> 0), closest
        to the kink relative to the spread first, as (ratio, key, flat index, pre64, spread, kink)."""
        pre, upper = self.pre64[mode]
        found = []
        for k, a in pre.items():
            s = self.spread[mode][k].view(-1)
            d = gates.kink_distance(a, upper[k]).view(-1)
            for i in torch.nonzero((d <= GATE_RULE_FACTOR * s) & (s > 0)).view(-1).tolist():
                kink = 0.0 if abs(a.view(-1)[i].item()) <= abs(a.view(-1)[i].item() - upper[k]) else upper[k]
                found.append((d[i].item() / s[i].item(), k, i, a.view(-1)[i].item(), s[i].item(), kink))
        return sorted(found)


def flipped_grads(model_name, classes, state, x, y, mode, flip):
    """The float64 gradients with gates' backward inverted at `flip` ({key: [flat index]}; forward
    unchanged): the answer of a float32 order that lands on the other side of those kinks and is
    otherwise exact."""
    with Order(TRUTH):
        m, x, y, _ = prepared(model_name, classes, state, x, y, torch.float64, TRUTH)
        plan = gates.flippable(m)
        plan["flip"] = flip
        m.train() if mode == "train" else m.eval()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        return {k: p.grad.detach().clone() for k, p in m.named_parameters()}


def truth_sets(found, cap, k):
    """The gate sets flipped, each its own truth: the `cap` closest single gates (all when None),
    then every pair among the `k` closest."""
    singles = [[g] for g in (found if cap is None else found[:cap])]
    return singles + [list(p) for p in itertools.combinations(found[:k], 2)]


def gate_flips(model_name, classes, state, x, y, spread, noise, truth, probes):
    """Each truth's flipped float64 answer at the stored outputs (`truth` maps mode -> float64
    gradients; prefix grad for train, evalgrad for eval): the flip.* tensors and the flips metadata
    record (module doc). A truth is a set of admissible gates flipped together."""
    params = list(next(iter(truth.values())).keys())
    index = {k: torch.from_numpy(probe_indices(k, t.numel(), probes)) for k, t in next(iter(truth.values())).items()}
    record = {"criterion": "|pre64 - kink| <= 3 x max over the float32 orders of |pre32 - pre64| at that element",
              "cap": {m: ("all" if c is None else c) for m, c in GATE_CAP.items()},
              "pairs": f"every pair among the {GATE_PAIR_K} closest admissible gates of each mode",
              "within": {}, "params": params, "admissible": {}, "truths": []}
    tensors = {}
    for mode, g64 in truth.items():
        prefix = "grad" if mode == "train" else "evalgrad"
        found = spread.within(mode)
        record["within"][mode] = len(found)
        shape = lambda key: spread.pre64[mode][0][key].shape
        where = lambda key, flat: [int(w) for w in torch.unravel_index(torch.tensor(flat), shape(key))]
        record["admissible"][mode] = [[key, where(key, flat), kink, a, s] for _, key, flat, a, s, kink in found]
        for gate_set in truth_sets(found, GATE_CAP[mode], GATE_PAIR_K):
            flip = {}
            for _, key, flat, *_ in gate_set:
                flip.setdefault(key, []).append(flat)
            g = flipped_grads(model_name, classes, state, x, y, mode, flip)
            j = len(record["truths"])
            delta = {k: g[k].flatten()[index[k]] - g64[k].flatten()[index[k]] for k in params}
            norm = {k: float(g[k].norm()) for k in params}
            tensors[f"flip.{j}.probe"] = torch.cat([delta[k] for k in params]).contiguous()
            tensors[f"flip.{j}.norm"] = torch.tensor([norm[k] for k in params], dtype=torch.float64)
            moved = [(float(delta[k].abs().max()), f"{prefix}.{k}", noise.worst[f"{prefix}.{k}"]) for k in params]
            moved += [(abs(norm[k] - float(g64[k].norm())), f"{prefix}.norm.{k}", noise.worst[f"{prefix}.norm.{k}"]) for k in params]
            moved = sorted(((d / n if n > 0 else math.inf, c, d, n) for d, c, n in moved if d > 0), reverse=True)
            record["truths"].append(dict(mode=mode, gates=[dict(gate=key, index=where(key, flat), kink=kink, pre64=a, spread=s)
                                                          for _, key, flat, a, s, kink in gate_set],
                                         top=[[c, d, n] for _, c, d, n in moved[:3]]))
    return tensors, record


def gradient_entries(prefix, g64, noise, probes, out):
    """Probes, norm, scale and noise of each gradient, under keys with `prefix` (grad, evalgrad)."""
    for k, g in g64.items():
        idx = probe_indices(k, g.numel(), probes)
        out[f"{prefix}.absmax.{k}"] = torch.tensor([float(g.abs().max())], dtype=torch.float32)
        if prefix == "grad":
            out[f"grad.index.{k}"] = torch.from_numpy(idx)
        out[f"f64.{prefix}.probe.{k}"] = g.flatten()[torch.from_numpy(idx)].clone()
        out[f"f64.{prefix}.norm.{k}"] = scalar64(float(g.norm()))
        out[f"noise.{prefix}.{k}"] = scalar64(noise.worst[f"{prefix}.{k}"])
        out[f"noise.{prefix}.norm.{k}"] = scalar64(noise.worst[f"{prefix}.norm.{k}"])


TRUTH = (1, True, False, False)


def compact(model_name, classes, state, x, y, probes, with_eval_grads=False):
    """The v2 tensors: float64 truth, float32 noise over ORDERS, probes, and the admissible gates'
    flipped answers (see the module doc)."""
    pre64 = {}
    ref, g64, a64 = run(model_name, classes, state, x, y, torch.float64, order=TRUTH, adamw=True, record=pre64)
    e64 = eval_grads(model_name, classes, state, x, y, torch.float64, TRUTH, record=pre64) if with_eval_grads else None
    noise, spread = Noise(), Spread(pre64)
    orders = orders_for(model_name, classes)
    for order in orders:
        pre32 = {}
        o32, g32, _ = run(model_name, classes, state, x, y, torch.float32, order, record=pre32)
        noise.outputs(ref, order, o32)
        noise.gradients("grad", g64, order_name(order), g32)
        spread.update("train", pre32["train"])
        if with_eval_grads:
            e32 = eval_grads(model_name, classes, state, x, y, torch.float32, order, record=pre32)
            noise.gradients("evalgrad", e64, order_name(order), e32)
            spread.update("eval", pre32["eval"])
    if with_eval_grads:
        # The micro-batch orders must be the same math: in float64 they agree with one batch.
        split64 = eval_grads(model_name, classes, state, x, y, torch.float64, TRUTH[:4] + (False, 1))
        for k, g in e64.items():
            gap = float((split64[k] - g).abs().max())
            assert gap <= 1e-9 * max(float(g.abs().max()), 1e-30), f"micro-batch float64 gradient of {k} off by {gap}"
    for order in EVAL_SPLIT_ORDERS if with_eval_grads else []:
        pre32 = {}
        e32 = eval_grads(model_name, classes, state, x, y, torch.float32, order, record=pre32)
        noise.gradients("evalgrad", e64, order_name(order), e32)
        spread.update("eval", pre32["eval"])
    flips, flip_record = gate_flips(model_name, classes, state, x, y, spread, noise,
                                    {"train": g64, **({"eval": e64} if with_eval_grads else {})}, probes)
    out = {"target": y, **flips}
    for k, v in ref.items():
        out[k if k.endswith("num_batches_tracked") else f"f64.{k}"] = v
        if not k.endswith("num_batches_tracked"):
            out[f"noise.{k}"] = scalar64(noise.worst[k])
    gradient_entries("grad", g64, noise, probes, out)
    for k in g64:
        out[f"adamw.probe.{k}"] = a64[k].flatten()[out[f"grad.index.{k}"]].float().clone()
    if with_eval_grads:
        gradient_entries("evalgrad", e64, noise, probes, out)
    meta = dict(format="finch-parity-v2", reference="float64", model=model_name, num_classes=str(classes),
                resolution=str(x.shape[-1]), batch=str(x.shape[0]), torch=torch.__version__, timm=timm.__version__,
                adamw=json.dumps({"lr": ADAMW["lr"], "betas": list(ADAMW["betas"]), "eps": ADAMW["eps"],
                                  "weight_decay": ADAMW["weight_decay"]}),
                probes=str(probes), parameters=str(sum(g.numel() for g in g64.values())),
                noise="max over float32 orders: " + " ".join(order_name(o) for o in orders)
                      + ("; evalgrad also: " + " ".join(order_name(o) for o in EVAL_SPLIT_ORDERS) if with_eval_grads else ""),
                noise_argmax=json.dumps(noise.counts(), sort_keys=True),
                flips=json.dumps(flip_record))
    return out, meta


def fixture(model_name, res, classes, batch, probes=PROBES):
    m = timm.create_model(model_name, pretrained=False, num_classes=classes)
    state = procedural_state(m)
    x, y = procedural_batch(res, classes, batch)
    out, meta = compact(model_name, classes, state, x, y, probes)
    meta.update(weights="procedural", input="procedural")
    return {k: v.contiguous() for k, v in out.items()}, meta


if __name__ == "__main__":
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    for spec in sys.argv[2:]:
        name, res, classes, batch, *rest = spec.split(":")
        t, meta = fixture(name, int(res), int(classes), int(batch), *(int(r) for r in rest))
        path = os.path.join(outdir, f"{name}_{res}_{classes}.safetensors")
        save_file(t, path, metadata=meta)
        print(path, "loss", float(t["f64.train.loss"]), "bytes", os.path.getsize(path),
              "noise argmax", meta["noise_argmax"], flush=True)
