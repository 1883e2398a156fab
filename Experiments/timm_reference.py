#!/usr/bin/env python3
"""The timm/PyTorch side of Experiments/RESULTS.md.

Trains one Finch config (the same YAML `train --config` reads, with the same `--set` overrides)
with timm models and torch.optim.AdamW, on the same photos, split, class limits, resolution,
augmentation, optimizer groups, schedule and epochs, and writes a JSON summary shaped like
Finch's summary.json. `--ncm` instead runs the nearest-class-mean row on frozen pretrained features.

Needs: pip install torch timm safetensors pillow pyyaml. torchvision is not needed (and its pip
wheel may not load against a CPU torch wheel): the transforms below are torchvision's and timm's
PIL pipelines written out with Pillow, and a stub stands in for the parts timm imports.
"""
import argparse, json, math, os, random, sys, time

import numpy as np
import yaml
from PIL import Image, ImageEnhance

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "tools"))
import torchvision_stub  # noqa: E402

torchvision_stub.install()
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import timm  # noqa: E402
from timm.data import Mixup  # noqa: E402
from timm.data.mixup import cutmix_bbox_and_lam, mixup_target  # noqa: E402
from timm.data.auto_augment import rand_augment_transform  # noqa: E402
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

BICUBIC, BILINEAR = Image.BICUBIC, Image.BILINEAR


# ---------------------------------------------------------------- config (Finch's YAML + --set)
def load_config(path, overrides):
    with open(path) as f:
        c = yaml.safe_load(f)
    for o in overrides:
        key, value = o.split("=", 1)
        node = c
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    return c


def get(c, dotted, default=None):
    node = c
    for p in dotted.split("."):
        if not isinstance(node, dict) or p not in node:
            return default
        node = node[p]
    return node


# ---------------------------------------------------------------- data (ImageFolder, byte-order sorted like Finch's)
def image_folder(root):
    classes = sorted((d for d in os.listdir(root) if not d.startswith(".") and os.path.isdir(os.path.join(root, d))),
                     key=lambda s: s.encode())
    samples = []
    for label, c in enumerate(classes):
        names = sorted((n for n in os.listdir(os.path.join(root, c)) if not n.startswith(".")), key=lambda s: s.encode())
        samples += [(os.path.join(root, c, n), label) for n in names]
    return classes, samples


def limited(classes, samples, limits):
    kept, out = {}, []
    for path, label in samples:
        kept[label] = kept.get(label, 0) + 1
        lim = limits.get(classes[label])
        if lim is None or kept[label] <= int(lim):
            out.append((path, label))
    return out


class TrainTransform:
    """timm's create_transform(is_training=True) on PIL: RandomResizedCrop, flips, then
    RandAugment or ColorJitter(b=c=s), then normalisation; torchvision's arithmetic."""

    def __init__(self, c, size, mean, std):
        self.size, self.mean, self.std = size, np.array(mean, np.float32), np.array(std, np.float32)
        self.scale = tuple(get(c, "data.scale", [0.08, 1.0]))
        self.ratio = tuple(get(c, "data.ratio", [3 / 4, 4 / 3]))
        self.hflip = get(c, "data.hflip", 0.5)
        self.interp = get(c, "data.interpolation", "bicubic")
        aa = get(c, "data.auto_augment")
        self.jitter = 0 if aa else get(c, "data.color_jitter", 0.4)
        self.ra = None
        if aa:
            hp = dict(translate_const=int(size * 0.45), img_mean=tuple(int(round(255 * m)) for m in mean))
            if self.interp != "random":
                hp["interpolation"] = BICUBIC if self.interp == "bicubic" else BILINEAR
            self.ra = rand_augment_transform(aa, hp)

    def crop_box(self, W, H):
        area = W * H
        lr = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * random.uniform(*self.scale)
            aspect = math.exp(random.uniform(*lr))
            w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < w <= W and 0 < h <= H:
                return random.randint(0, W - w), random.randint(0, H - h), w, h
        r = W / H
        w, h = W, H
        if r < self.ratio[0]:
            h = int(round(w / self.ratio[0]))
        elif r > self.ratio[1]:
            w = int(round(h * self.ratio[1]))
        return (W - w) // 2, (H - h) // 2, w, h

    def __call__(self, im):
        x, y, w, h = self.crop_box(*im.size)
        f = random.choice([BILINEAR, BICUBIC]) if self.interp == "random" else (BICUBIC if self.interp == "bicubic" else BILINEAR)
        im = im.crop((x, y, x + w, y + h)).resize((self.size, self.size), f)  # torchvision's F.resized_crop
        if random.random() < self.hflip:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        if self.ra is not None:
            im = self.ra(im)
        elif self.jitter > 0:
            lo, hi = max(0.0, 1 - self.jitter), 1 + self.jitter
            for op in torch.randperm(3).tolist():
                factor = random.uniform(lo, hi)
                im = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)[op](im).enhance(factor)
        return to_tensor(im, self.mean, self.std)


class TwoViews:
    """distill.teacher.view: own, as Finch's DataLoader.secondView: the photo through the student's
    transform, then again through the same transform at the teacher's size with the random state
    the first call started from (Python's, NumPy's and torch's: crop box in source pixels, filter,
    flip, jitter order and factors, RandAugment's ops, magnitudes and signs). None of those draws
    depends on the output size, so the second call makes the same choices."""

    def __init__(self, student, teacher):
        self.student, self.teacher = student, teacher

    def __call__(self, im):
        state = random.getstate(), np.random.get_state(), torch.get_rng_state()
        x = self.student(im)
        after = random.getstate(), np.random.get_state(), torch.get_rng_state()
        random.setstate(state[0]), np.random.set_state(state[1]), torch.set_rng_state(state[2])
        tx = self.teacher(im)
        # Continue from where the student's call left the streams (the same place, or a draw
        # depended on the size and the views differ: refuse rather than teach from another view).
        assert random.getstate() == after[0] and torch.equal(torch.get_rng_state(), after[2]), "a draw depended on the output size"
        return x, tx


def scale_edge(e, frm, to):
    """A CutMix box edge on the teacher's image: nearest pixel, halves up (Finch's Mixup.scaled)."""
    return (2 * e * to + frm) // (2 * frm)


def mix_views(mixer, x, tx, y):
    """timm's Mixup.__call__ in batch mode (one λ and box for the batch, partner = flip(0)) on the
    student's batch, and the same λ, partner and box (scaled to its size) on the teacher's."""
    assert mixer.mode == "batch" and len(x) % 2 == 0
    lam, use_cutmix = mixer._params_per_batch()
    if lam != 1.0:
        if use_cutmix:
            (yl, yh, xl, xh), lam = cutmix_bbox_and_lam(x.shape, lam, ratio_minmax=mixer.cutmix_minmax, correct_lam=mixer.correct_lam)
            x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]
            (h, w), (th, tw) = x.shape[2:], tx.shape[2:]
            tyl, tyh, txl, txh = scale_edge(yl, h, th), scale_edge(yh, h, th), scale_edge(xl, w, tw), scale_edge(xh, w, tw)
            tx[:, :, tyl:tyh, txl:txh] = tx.flip(0)[:, :, tyl:tyh, txl:txh]
        else:
            x_flipped, tx_flipped = x.flip(0).mul_(1.0 - lam), tx.flip(0).mul_(1.0 - lam)
            x.mul_(lam).add_(x_flipped)
            tx.mul_(lam).add_(tx_flipped)
    return x, tx, mixup_target(y, mixer.num_classes, lam, mixer.label_smoothing)


class EvalTransform:
    """Resize the short side to ⌊size / crop_pct⌋, centre crop (torchvision's round), normalise."""

    def __init__(self, size, crop_pct, interp, mean, std):
        self.size, self.short = size, int(math.floor(size / crop_pct))
        self.interp = BICUBIC if interp == "bicubic" else BILINEAR
        self.mean, self.std = np.array(mean, np.float32), np.array(std, np.float32)

    def __call__(self, im):
        W, H = im.size
        w, h = (self.short, int(self.short * H / W)) if W <= H else (int(self.short * W / H), self.short)
        im = im.resize((w, h), self.interp)
        top, left = int(round((h - self.size) / 2.0)), int(round((w - self.size) / 2.0))
        im = im.crop((left, top, left + self.size, top + self.size))
        return to_tensor(im, self.mean, self.std)


def to_tensor(im, mean, std):
    a = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(((a - mean) / std).transpose(2, 0, 1).copy())


class Files(torch.utils.data.Dataset):
    def __init__(self, samples, transform):
        self.samples, self.transform = samples, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        with Image.open(path) as im:
            x = self.transform(im.convert("RGB"))
        return (*x, label) if isinstance(x, tuple) else (x, label)


def worker_init(worker_id):
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed % 2**32)


# ---------------------------------------------------------------- models
def pretrained_model(name, num_classes, weights, drop_rate=0.0, head_init="timm"):
    m = timm.create_model(name, num_classes=num_classes, drop_rate=drop_rate)
    sd = load_file(weights)
    head = {k for k in sd if k.startswith("classifier.")}
    if sd["classifier.weight"].shape[0] != num_classes:
        sd = {k: v for k, v in sd.items() if k not in head}
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected and set(missing) <= head, (missing, unexpected)
    if head_init == "zeros":
        with torch.no_grad():
            m.classifier.weight.zero_()
            m.classifier.bias.zero_()
    return m


def model_config(m):
    cfg = m.pretrained_cfg
    return cfg["mean"], cfg["std"], cfg.get("crop_pct", 0.875), cfg.get("interpolation", "bicubic")


def evaluate(model, loader, k):
    model.eval()
    conf = np.zeros((k, k), np.int64)
    loss_sum, n, start = 0.0, 0, time.time()
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            for t, p in zip(y.tolist(), logits.argmax(1).tolist()):
                conf[t, p] += 1
            n += len(y)
    seconds = time.time() - start
    per_class = conf.diagonal() / np.maximum(conf.sum(1), 1)
    return dict(top1=float(conf.diagonal().sum() / n), balanced=float(per_class.mean()), loss=loss_sum / n,
                img_per_s=n / seconds, count=n, per_class=[float(a) for a in per_class])


def teacher_input(x, size):
    """The student's batch as the teacher gets it: unchanged, or resized to size × size as Finch's
    Distillation.teacherInput does (bilinear, half-pixel centres, no antialiasing)."""
    if size is None or x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


# ---------------------------------------------------------------- one training run
def train(c, args):
    seed = int(get(c, "seed", 42)) + args.seed_offset
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    root = get(c, "data.root")
    classes, train_samples = image_folder(os.path.join(root, "train"))
    _, val_samples = image_folder(os.path.join(root, "val"))
    if get(c, "data.class_limits"):
        train_samples = limited(classes, train_samples, get(c, "data.class_limits"))
    k = len(classes)
    name = get(c, "model.name")
    model = pretrained_model(name, k, get(c, "model.pretrained"), get(c, "model.drop_rate", 0.0), get(c, "model.head_init", "timm"))
    mean, std, crop_pct, interp = model_config(model)
    size = int(get(c, "data.image_size", 224))
    batch = int(get(c, "data.batch_size", 128))
    workers = int(get(c, "data.workers", 2))

    # distill.teacher.view (Finch's TrainConfig.Teacher): own renders the teacher's view in the
    # loader (TwoViews); resized (or one size) adapts the student's batch (teacher_input).
    teacher_view = None
    if get(c, "distill"):
        ts = get(c, "distill.teacher.image_size")
        view = get(c, "distill.teacher.view", "own")
        assert view in ("own", "resized"), f"distill.teacher.view: {view!r} is not one of own, resized"
        if ts is not None and int(ts) != size and view == "own":
            assert not get(c, "data.re_prob"), "distill.teacher.view own with random erasing is refused (as Finch)"
            teacher_view = int(ts)
    train_transform = TrainTransform(c, size, mean, std)
    if teacher_view is not None:
        # The teacher's statistics are the student's here (see below).
        train_transform = TwoViews(train_transform, TrainTransform(c, teacher_view, mean, std))

    labels = [l for _, l in train_samples]
    counts = np.bincount(labels, minlength=k)
    if get(c, "data.sampler", "random") == "weighted":
        w = [1.0 / counts[l] for l in labels]
        sampler = torch.utils.data.WeightedRandomSampler(w, num_samples=len(labels), replacement=True)
        shuffle = None
    else:
        sampler, shuffle = None, True
    train_loader = torch.utils.data.DataLoader(Files(train_samples, train_transform), batch_size=batch,
                                               shuffle=shuffle, sampler=sampler, drop_last=True, num_workers=workers,
                                               worker_init_fn=worker_init, persistent_workers=workers > 0)
    val_loader = torch.utils.data.DataLoader(Files(val_samples, EvalTransform(size, float(get(c, "data.crop_pct", crop_pct)), interp, mean, std)),
                                             batch_size=batch, shuffle=False, num_workers=workers)

    mode = get(c, "finetune.mode", "full")
    if mode == "head":
        for n_, p in model.named_parameters():
            p.requires_grad = n_.startswith("classifier.")
    # Parameter groups as Finch and timm form them: no decay for ndim ≤ 1, per-layer rates.
    base_lr = float(get(c, "optimizer.lr"))
    wd = float(get(c, "optimizer.weight_decay", 0.0))
    layer_lr = get(c, "optimizer.layer_lr", {}) or {}
    layer_mult = get(c, "optimizer.layer_lr_multiplier", {}) or {}
    groups = {}
    for n_, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # layer_lr sets a group's own base rate (scheduled from it); layer_lr_multiplier is timm's
        # lr_scale (the scheduled rate times the multiplier, floor included).
        lr, scale = base_lr, 1.0
        for prefix, v in layer_mult.items():
            if n_ == prefix or n_.startswith(prefix + "."):
                scale = float(v)
        for prefix, v in layer_lr.items():
            if n_ == prefix or n_.startswith(prefix + "."):
                lr, scale = float(v), 1.0
        decay = 0.0 if p.ndim <= 1 else wd
        groups.setdefault((lr, scale, decay), []).append(p)
    betas = tuple(get(c, "optimizer.betas", [0.9, 0.999]))
    opt = torch.optim.AdamW([dict(params=ps, lr=lr * sc, weight_decay=d, initial_lr=lr, lr_scale=sc) for (lr, sc, d), ps in groups.items()],
                            lr=base_lr, betas=betas, eps=float(get(c, "optimizer.eps", 1e-8)))
    epochs = int(get(c, "schedule.epochs"))
    min_lr = float(get(c, "schedule.min_lr", 0.0))
    assert get(c, "schedule.name", "cosine") == "cosine" and int(get(c, "schedule.warmup_epochs", 0)) == 0

    smoothing = float(get(c, "mixup.label_smoothing", 0.1))
    ma, ca = float(get(c, "mixup.mixup_alpha", 0.0)), float(get(c, "mixup.cutmix_alpha", 0.0))
    mixer = None
    if ma > 0 or ca > 0:
        mixer = Mixup(mixup_alpha=ma, cutmix_alpha=ca, prob=float(get(c, "mixup.prob", 1.0)),
                      switch_prob=float(get(c, "mixup.switch_prob", 0.5)), label_smoothing=smoothing, num_classes=k)
        criterion = SoftTargetCrossEntropy()
    else:
        criterion = LabelSmoothingCrossEntropy(smoothing) if smoothing > 0 else torch.nn.CrossEntropyLoss()

    teacher, alpha, temp, kind, teacher_size = None, 0.0, 1.0, "soft", None
    if get(c, "distill"):
        # The teacher sees its own rendering of each augmented (and mixed) photo (view own: TwoViews,
        # mix_views), or the student's batch resized to its input size (view resized, or one size:
        # teacher_input, as Finch's Distillation.teacherInput). Its
        # statistics are the student's (both Lite models use mean = std = 0.5); other ones are not
        # mirrored here.
        assert get(c, "distill.teacher.mean") is None and get(c, "distill.teacher.std") is None, \
            "distill.teacher.mean/std are not supported here"
        teacher_size = get(c, "distill.teacher.image_size")
        if teacher_size is not None:
            teacher_size = int(teacher_size)
        tw = args.teacher_weights
        assert tw, "--teacher-weights (the timm teacher run's state dict) is needed for a distillation config"
        teacher = timm.create_model(get(c, "distill.teacher.name"), num_classes=k)
        teacher.load_state_dict(torch.load(tw, map_location="cpu"))
        teacher.eval()
        # Finch's defaults (TrainConfig.Distill): α 0.5, T 4, soft.
        alpha, temp = float(get(c, "distill.alpha", 0.5)), float(get(c, "distill.temperature", 4.0))
        kind = get(c, "distill.kind", "soft")
        assert kind in ("soft", "hard"), kind

    history, train_seconds_total, start, shown_input = [], 0.0, time.time(), False
    best = (-1.0, None)  # Finch's checkpoint.monitor val/top1: the teacher is the best epoch's weights
    for epoch in range(epochs):
        for g in opt.param_groups:  # timm's per-epoch cosine, the same floor for every group
            g["lr"] = (min_lr + 0.5 * (g["initial_lr"] - min_lr) * (1 + math.cos(math.pi * epoch / epochs))) * g["lr_scale"]
        model.train()
        if mode == "head":
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        seen, loss_sum, correct, t0 = 0, 0.0, 0, time.time()
        for item in train_loader:
            x, tx_own, y = item if teacher_view is not None else (item[0], None, item[1])
            target = y
            if mixer is not None and tx_own is not None:
                x, tx_own, target = mix_views(mixer, x, tx_own, y)
            elif mixer is not None:
                x, target = mixer(x, y)
            if not shown_input:  # what the model and its teacher see, once per run (the smoke checks read it)
                print(f"model input {list(x.shape)}", flush=True)
            logits = model(x)
            loss = criterion(logits, target)
            if teacher is not None:
                with torch.no_grad():
                    tx = tx_own if tx_own is not None else teacher_input(x, teacher_size)
                    if not shown_input:
                        print(f"teacher input {list(tx.shape)}", flush=True)
                    tl = teacher(tx)
                if kind == "hard":  # DeiT: cross-entropy against the teacher's arg-max, no smoothing
                    loss = loss * (1 - alpha) + F.cross_entropy(logits, tl.argmax(1)) * alpha
                else:
                    kd = F.kl_div(F.log_softmax(logits / temp, 1), F.softmax(tl / temp, 1), reduction="batchmean")
                    loss = loss * (1 - alpha) + kd * (alpha * temp * temp)
            shown_input = True
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
        train_seconds = time.time() - t0
        train_seconds_total += train_seconds
        v = evaluate(model, val_loader, k)
        row = {"epoch": epoch + 1, "train/loss": loss_sum / seen, "train/top1": correct / seen, "train/img_per_s": seen / train_seconds,
               "val/top1": v["top1"], "val/balanced_accuracy": v["balanced"], "val/loss": v["loss"], "val/img_per_s": v["img_per_s"],
               "val/per_class_accuracy": dict(zip(classes, v["per_class"]))}
        history.append(row)
        print(json.dumps(row), flush=True)
        if args.save_weights and v["top1"] > best[0]:
            best = (v["top1"], {n_: t.detach().clone() for n_, t in model.state_dict().items()})
    if args.save_weights:
        torch.save(best[1], args.save_weights + ".tmp")
        os.replace(args.save_weights + ".tmp", args.save_weights)
    return {"experiment": get(c, "experiment"), "model": name, "epochs_run": epochs, "final": history[-1], "history": history,
            "parameters": sum(p.numel() for p in model.parameters()),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "total_seconds": time.time() - start, "train_images": len(train_samples), "val_images": len(val_samples),
            "classes": classes, "seed": seed, "image_size": size,
            **({"teacher_image_size": teacher_size or size, "teacher_view": "own" if teacher_view else "resized"} if teacher is not None else {}),
            "torch": torch.__version__, "timm": timm.__version__}


# ---------------------------------------------------------------- nearest class mean on frozen features
def ncm(args):
    random.seed(0)
    torch.manual_seed(0)
    classes, train_samples = image_folder(os.path.join(args.data, "train"))
    _, val_samples = image_folder(os.path.join(args.data, "val"))
    k = len(classes)
    model = pretrained_model(args.model, 1000, args.weights)
    model.eval()
    mean, std, crop_pct, interp = model_config(model)
    t = EvalTransform(args.resolution, crop_pct, interp, mean, std)
    start = time.time()

    def features(samples):
        loader = torch.utils.data.DataLoader(Files(samples, t), batch_size=32, num_workers=args.workers)
        out, labels, t0 = [], [], time.time()
        with torch.no_grad():
            for x, y in loader:
                out.append(F.normalize(model.forward_head(model.forward_features(x), pre_logits=True), dim=1))
                labels += y.tolist()
        return torch.cat(out), np.array(labels), len(samples) / (time.time() - t0)

    ftr, ltr, _ = features(train_samples)
    centroids = F.normalize(torch.stack([ftr[torch.from_numpy(ltr == c)].mean(0) for c in range(k)]), dim=1)
    fva, lva, rate = features(val_samples)
    pred = (fva @ centroids.T).argmax(1).numpy()
    per_class = [float((pred[lva == c] == c).mean()) for c in range(k)]
    return {"experiment": "ncm", "model": args.model, "epochs_run": 0,
            "final": {"val/top1": float((pred == lva).mean()), "val/balanced_accuracy": float(np.mean(per_class)), "val/img_per_s": rate},
            "parameters": sum(p.numel() for p in model.parameters()) - model.classifier.weight.numel() - model.classifier.bias.numel(),
            "total_seconds": time.time() - start, "train_images": len(train_samples), "torch": torch.__version__, "timm": timm.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="a Finch training config (YAML)")
    ap.add_argument("--set", action="append", default=[], help="key=value override, as train --set")
    ap.add_argument("--out", help="JSON summary to write")
    ap.add_argument("--check", action="store_true", help="only check that torch and timm import (exit status)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed-offset", type=int, default=0, help="added to the config's seed (second-seed runs)")
    ap.add_argument("--teacher-weights", help="state dict of the timm teacher run (distillation configs)")
    ap.add_argument("--save-weights", help="write the trained state dict here (the teacher run)")
    ap.add_argument("--ncm", action="store_true", help="nearest-class-mean row instead of training")
    ap.add_argument("--model", default="tf_efficientnet_lite0")
    ap.add_argument("--weights", default="Checkpoints/tf_efficientnet_lite0.safetensors")
    ap.add_argument("--data", default="Datasets/flowers")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if args.check:
        return
    if not args.out:
        ap.error("--out is required")
    torch.set_num_threads(args.threads)
    result = ncm(args) if args.ncm else train(load_config(args.config, args.set), args)
    with open(args.out + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(args.out + ".tmp", args.out)
    print(json.dumps(result["final"]))


if __name__ == "__main__":
    main()
