#!/usr/bin/env python3
"""Writes Experiments/RESULTS.md from the JSON that Experiments/run_table.sh collects in
Experiments/results/ (standard library only). Every number in the file comes from those runs;
nothing here is typed in: means and sample standard deviations over the seeds found, the
binomial standard error of one run's accuracy on the validation set, and the statements the
table supports (head-only < full < distilled on means, the teacher above the student)."""
import argparse, datetime, json, math, os, platform, statistics, subprocess

ROWS = [("ncm", "pretrained as-is", "frozen ImageNet Lite0, nearest class mean (cosine) of pooled features, no training"),
        ("head", "head-only", "backbone frozen (BatchNorm in eval mode), new zero-initialised head, AdamW 3e-3"),
        ("full", "full", "everything trained, AdamW 3e-4, stem 1e-5, head 10× (3e-3), cosine, label smoothing 0.1"),
        ("mixup", "full + MixUp/CutMix", "as full, MixUp α 0.2 / CutMix α 1.0 (switch 0.5), RandAugment rand-m6-mstd0.5-inc1, smoothing 0.1"),
        ("teacher", "teacher (Lite2, 224 px)", "tf_efficientnet_lite2 at 224 px (the photos upsampled), full fine-tuning as the full row but 6 epochs (drop 0.3); its best epoch teaches"),
        ("distill", "soft KD", "Lite0 at 128 px as full + soft KD from the same seed's teacher, which sees each training draw rendered again at 224 px from the photo with the same augmentation (`distill.teacher.view: own`), α 0.5, T 2"),
        ("distill-hard", "hard KD (DeiT)", "Lite0 as full + hard KD: (1 − α)·CE(labels) + α·CE(teacher arg-max), α 0.5"),
        ("distill-mixup", "soft KD + MixUp/CutMix", "as full + MixUp/CutMix (row above) + soft KD α 0.5, T 2; the teacher sees the mixed batch"),
        ("imbalanced-plain", "imbalanced, uniform", "full on 600/400/150/100/50 train photos per class, uniform shuffling"),
        ("imbalanced-weighted", "imbalanced, weighted", "the same subset, class-balanced WeightedRandomSampler (weights 1/count, 1,300 draws per epoch, with replacement)")]
KD_ROWS = ("distill", "distill-hard", "distill-mixup")
# Each trained row's config (as run_table.sh's config_for): a result counts for its row only when it
# ran the config's current recipe (recipe()), so results of an older one (the 128-px teacher and the
# students it taught) are left out instead of being reported under the new row.
CONFIGS = {"head": "flowers-head.yaml", "full": "flowers.yaml", "mixup": "flowers-mixup.yaml",
           "teacher": "flowers-teacher-lite2-224.yaml", "distill": "flowers-distill.yaml",
           "distill-hard": "flowers-distill-hard.yaml", "distill-mixup": "flowers-distill-mixup.yaml",
           "imbalanced-plain": "flowers-imbalanced-plain.yaml", "imbalanced-weighted": "flowers-imbalanced-weighted.yaml"}


def block_keys(path):
    """The scalar keys of a block-style YAML file as dotted paths ("distill.teacher.image_size") to
    their raw text: enough for the configs' experiment and sizes without a YAML library."""
    out, stack = {}, []
    with open(path) as f:
        for line in f:
            text = line.split(" #", 1)[0].rstrip()
            if not text.strip() or text.lstrip().startswith(("#", "-")) or ":" not in text:
                continue
            indent = len(text) - len(text.lstrip())
            key, value = (p.strip() for p in text.split(":", 1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, key))
            if value:
                out[".".join(k for _, k in stack)] = value
    return out


def recipe(row):
    """(experiment, teacher's input size or "-") that a row's result must record, None for ncm."""
    if row not in CONFIGS:
        return None
    k = block_keys(os.path.join(os.path.dirname(os.path.abspath(__file__)), CONFIGS[row]))
    teacher = "-"
    if any(key.startswith("distill.") for key in k):
        teacher = k.get("distill.teacher.image_size") or k.get("data.image_size", "-")
    return k.get("experiment"), teacher


STALE = []  # results left out by load(): another recipe of their row


def load(d, side, row, seeds):
    """The runs of one row on one side, one per seed found, each with its per-epoch history."""
    out, want = [], recipe(row)
    for s in seeds:
        p = os.path.join(d, f"{side}-{row}-s{s}.json")
        if not os.path.exists(p):
            continue
        with open(p) as f:
            r = json.load(f)
        if want and (r.get("experiment"), str(r.get("teacher_image_size", "-"))) != want:
            STALE.append(os.path.basename(p))
            continue
        hist = os.path.join(d, f"{side}-{row}-s{s}.jsonl")
        if os.path.exists(hist):
            with open(hist) as f:
                r["history"] = [json.loads(l) for l in f if l.strip()]
        r["_seed"] = s
        out.append(r)
    return out


def values(runs, key):
    return [r["final"][key] for r in runs if key in r.get("final", {})]


def mean(runs, key="val/top1"):
    v = values(runs, key)
    return statistics.mean(v) if v else None


def sd(runs, key="val/top1"):
    v = values(runs, key)
    return statistics.stdev(v) if len(v) > 1 else None


def mean_sd(runs, key="val/top1", scale=1.0, spec="{:.3f}"):
    v = [x * scale for x in values(runs, key)]
    if not v:
        return "–"
    s = spec.format(statistics.mean(v))
    if len(v) > 1:
        s += " ± " + spec.format(statistics.stdev(v))
    return s + f" ({len(v)})"


def top_mean(runs, key, spec):
    v = [r[key] for r in runs if key in r]
    return spec.format(statistics.mean(v)) if v else "–"


def common(*rows):
    """The rows restricted to the seeds every one of them has, so a comparison of means is paired."""
    seeds = set.intersection(*(set(r["_seed"] for r in row) for row in rows))
    return [[r for r in row if r["_seed"] in seeds] for row in rows]


def diff(a, b):
    """Difference of two rows' means and its standard error from the seeds' spread (Welch)."""
    va, vb = values(a, "val/top1"), values(b, "val/top1")
    if not va or not vb:
        return None, None
    d = statistics.mean(va) - statistics.mean(vb)
    if len(va) < 2 or len(vb) < 2:
        return d, None
    return d, math.sqrt(statistics.variance(va) / len(va) + statistics.variance(vb) / len(vb))


def pts(d, se):
    return f"{100 * d:+.1f}" + (f" ± {100 * se:.1f}" if se is not None else "") + " pts"


def params(r):
    if not r:
        return "–"
    p, t = r[0].get("parameters"), r[0].get("trainable_parameters")
    s = f"{p / 1e6:.2f} M"
    if t is not None and t != p:
        s += f" ({t / 1e3:.1f} k trained)" if t < 1e6 else f" ({t / 1e6:.2f} M trained)"
    return s


def curve(runs):
    out = []
    for r in runs:
        h = r.get("history") or []
        if h:
            out.append(" → ".join(f"{e['val/top1']:.3f}" for e in h))
    return "; ".join(out) if out else "–"


def per_class(runs):
    """Last-epoch per-class val accuracy of each run that recorded it: {class: [acc per seed]}."""
    out = {}
    for r in runs:
        h = r.get("history") or []
        pc = h[-1].get("val/per_class_accuracy") if h else None
        for c, a in (pc or {}).items():
            out.setdefault(c, []).append(a)
    return out


def seed_cell(r):
    """One seed's top-1, marked † when its result names the commit it ran at: run_table.sh has stamped
    results since the preprocessing became Pillow's and torchvision's exactly, so an unstamped one is older."""
    if r is None or r["final"].get("val/top1") is None:
        return "–"
    return f"{r['final']['val/top1']:.3f}" + ("†" if r.get("commit") else "")


def fmt_list(v):
    if not v:
        return "–"
    s = f"{statistics.mean(v):.3f}"
    return s + (f" ± {statistics.stdev(v):.3f}" if len(v) > 1 else "")


def count_images(folder):
    n = 0
    for _, _, files in os.walk(folder):
        n += sum(1 for f in files if not f.startswith("."))
    return n


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:
        return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seeds", default="0 1 2")
    ap.add_argument("--output", required=True)
    ap.add_argument("--data", default="Datasets/flowers", help="the dataset (its val/ folder sizes the binomial error)")
    ap.add_argument("--wall-seconds", type=float, help="wall time of the run_table.sh invocation that wrote this")
    a = ap.parse_args()
    seeds = a.seeds.split()
    res = {row: (load(a.dir, "finch", row, seeds), load(a.dir, "timm", row, seeds)) for row, _, _ in ROWS}
    n_val = count_images(os.path.join(a.data, "val"))
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    swift = sh("swift --version 2>&1 | head -1")
    timm_runs = [r for _, (_, t) in res.items() for r in t]
    timm_v = timm_runs[0].get("timm") if timm_runs else None
    torch_v = timm_runs[0].get("torch") if timm_runs else None
    compute = sum(r.get("total_seconds", 0) for _, (f, t) in res.items() for r in f + t)

    L = ["# Flowers fine-tuning: Finch and timm side by side, over seeds\n"]
    L.append(f"Written by `Experiments/run_table.sh` (seeds {', '.join(seeds)}) on "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC at commit `{sh('git rev-parse --short HEAD') or '?'}`; "
             f"{cpu or platform.processor()}, {os.cpu_count()} logical CPUs, {swift or 'Swift ?'}"
             + (f"; timm {timm_v}, torch {torch_v}" if timm_v else "; timm not run") + ". "
             f"Every number below is read from the runs' own JSON (`{os.path.relpath(a.dir)}/`) by `Experiments/make_results.py`. "
             f"The runs reported took {compute / 3600:.1f} h of training and evaluation in all"
             + (f"; the last `run_table.sh` invocation ran {a.wall_seconds / 3600:.1f} h (rows already done are not rerun)" if a.wall_seconds else "")
             + ".\n")
    L.append("Setup: student `tf_efficientnet_lite0`, teacher `tf_efficientnet_lite2`, both from the ImageNet weights in `Checkpoints/`; "
             f"`Datasets/flowers` train (3,668 photos) / val ({n_val} photos), 5 classes, 128 px for every row but the teacher, "
             "which trains and is evaluated at 224 px on the 128-px photos upsampled and during distillation sees each of the students' training draws rendered again at 224 px (same crop, flip, jitter, RandAugment and mix) "
             "(train: RandomResizedCrop "
             "scale 0.25–1, flip, colour jitter 0.3 unless stated; eval: resize to 146, centre crop 128, bicubic); batch 32, "
             "2 threads and 2 loader workers on both sides, the same configs (`Experiments/flowers*.yaml`) read by both. "
             "Seed offset k sets the config's seed to 42 + k on both sides (initial head, dropout, augmentation and order; "
             "the two sides' random streams differ). Each seed's distillation rows learn from that seed's teacher."
             + (f" Left out as results of an older recipe of their row (another experiment or teacher resolution): {', '.join(sorted(STALE))}."
                if STALE else "") + "\n")
    L.append("Top-1 and balanced accuracy are the last epoch's on val, as mean ± sample standard deviation over seeds "
             "(number of seeds in brackets). The seeds' spread is training noise on a fixed val set; the **binomial SE** column is the "
             f"other error a reader should keep in mind, the sampling error of one accuracy measured on {n_val} photos, "
             "√(p(1 − p)/n) at the row's mean: a second val set of the same size would move a number by about that much. "
             "Differences between rows below use the seeds' spread (the rows share the val set). Wall time is one run's whole "
             "training and per-epoch validation (mean over seeds; the machine was shared with other jobs, so times are noisy); "
             "img/s are the last epoch's.\n")

    L.append("| row | Finch top-1 | timm top-1 | Δ (pts) | binomial SE | Finch bal. acc. | timm bal. acc. | params | epochs | Finch wall s | timm wall s | Finch train img/s | timm train img/s |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row, label, _ in ROWS:
        f, t = res[row]
        mf, mt = mean(f), mean(t)
        delta = f"{100 * (mf - mt):+.1f}" if mf is not None and mt is not None else "–"
        p = mf if mf is not None else mt
        se = f"{math.sqrt(p * (1 - p) / n_val):.3f}" if p is not None and n_val else "–"
        ep = str(f[0]["epochs_run"]) if f else (str(t[0]["epochs_run"]) if t else "–")
        L.append(f"| {label} | {mean_sd(f)} | {mean_sd(t)} | {delta} | {se} | {mean_sd(f, 'val/balanced_accuracy')} | "
                 f"{mean_sd(t, 'val/balanced_accuracy')} | {params(f or t)} | {ep} | {top_mean(f, 'total_seconds', '{:.0f}')} | "
                 f"{top_mean(t, 'total_seconds', '{:.0f}')} | {mean_sd(f, 'train/img_per_s', spec='{:.1f}')} | "
                 f"{mean_sd(t, 'train/img_per_s', spec='{:.1f}')} |")

    L.append("\nVal top-1 per seed (Finch | timm):\n")
    L.append("| row | " + " | ".join(f"Finch s{s}" for s in seeds) + " | " + " | ".join(f"timm s{s}" for s in seeds) + " |")
    L.append("|---|" + "---|" * (2 * len(seeds)))
    for row, label, _ in ROWS:
        f, t = res[row]
        by = lambda runs: {r["_seed"]: r for r in runs}
        bf, bt = by(f), by(t)
        L.append(f"| {label} | " + " | ".join(seed_cell(bf.get(s)) for s in seeds) + " | "
                 + " | ".join(seed_cell(bt.get(s)) for s in seeds) + " |")
    stamped = sorted({r["commit"] for _, (f, t) in res.items() for r in f + t if r.get("commit")})
    if stamped:
        L.append(f"\n† ran with the exact preprocessing (Pillow's fixed-point resampling, RandomResizedCrop cropping before it "
                 f"resizes, as torchvision), at commit {', '.join(f'`{c}`' for c in stamped)}. Unmarked seeds ran before "
                 "it (commits up to `e65fce9`), with the older resampler on both sides: it rounded once where Pillow rounds after "
                 "each pass (one level apart on about 18 % of the input values) and resampled the crop box on the whole photo. "
                 "`Experiments/README.md` weighs what that changes.")

    L.append("\nWhat each row is:\n")
    for row, label, what in ROWS:
        L.append(f"- **{label}**: {what}.")
    L.append("\nVal top-1 per epoch, one curve per seed (Finch | timm):\n")
    for row, label, _ in ROWS:
        f, t = res[row]
        if row != "ncm" and (f or t):
            L.append(f"- {label}: {curve(f)} | {curve(t)}")

    L.append("\n## What the table shows\n")
    for side, i in (("Finch", 0), ("timm", 1)):
        h, fu, te = res["head"][i], res["full"][i], res["teacher"][i]
        if not h or not fu:
            L.append(f"- {side}: head-only and full have not both run yet.")
        for kd in KD_ROWS if h and fu else ():
            di = res[kd][i]
            label = dict((r, l) for r, l, _ in ROWS)[kd]
            if not di:
                continue
            ch, cfu, cdi = common(h, fu, di)
            n = len(ch)
            if n == 0:
                L.append(f"- {side}, {label}: no seed has head-only, full and distilled all run yet.")
                continue
            holds = mean(ch) < mean(cfu) < mean(cdi)
            d1, s1 = diff(cfu, ch)
            d2, s2 = diff(cdi, cfu)
            L.append(f"- {side}, {label}: head-only {mean(ch):.3f} < full {mean(cfu):.3f} < distilled {mean(cdi):.3f} "
                     f"{'holds' if holds else 'does not hold'} on means over the {n} seed{'s' if n != 1 else ''} all three have "
                     f"(full − head-only {pts(d1, s1)}, distilled − full {pts(d2, s2)}; ± is the standard error of the difference from the seeds' spread).")
        cte, cfu = common(te, fu) if te and fu else ([], [])
        if cte:
            d, s = diff(cte, cfu)
            L.append(f"- {side}, teacher: Lite2 {mean(cte):.3f} against the Lite0 student trained alone {mean(cfu):.3f} "
                     f"(seeds both have: {len(cte)}): the teacher is "
                     f"{'above' if d > 0 else 'not above'} the student ({pts(d, s)}).")
    for side, i in (("Finch", 0), ("timm", 1)):
        p, w = mean(res["imbalanced-plain"][i], "val/balanced_accuracy"), mean(res["imbalanced-weighted"][i], "val/balanced_accuracy")
        if p is not None and w is not None:
            L.append(f"- {side}, imbalanced subset: balanced accuracy {p:.3f} with uniform sampling, {w:.3f} with class-balanced "
                     f"weighted sampling ({100 * (w - p):+.1f} pts).")
    gaps = []
    for row, label, _ in ROWS:
        f, t = res[row]
        if f and t:
            d, s = diff(f, t)
            gaps.append((label, d, s))
    if gaps:
        within = [g for g in gaps if abs(g[1]) <= 0.01]
        L.append(f"- Finch within 1 point of timm (on means) on {len(within)} of {len(gaps)} rows"
                 + ("" if len(within) == len(gaps) else "; outside: " + ", ".join(f"{l} ({pts(d, s)})" for l, d, s in gaps if abs(d) > 0.01)) + ".")
        big = [(l, d, s) for l, d, s in gaps if s is not None and abs(d) > 2 * s]
        L.append("- Finch − timm differences larger than twice their standard error: "
                 + (", ".join(f"{l} ({pts(d, s)})" for l, d, s in big) if big else "none") + ".")

    L.append("- The recipe behind these rows (why the teacher trains at 224 px while every student, distilled or not, "
             "keeps the full row's 128 px, why every row runs 6 epochs, and the KD settings) is discussed in `Experiments/README.md`, \"What makes distillation pay\".")

    # Per-class accuracy of the imbalanced pair, both sides: where the samplers' gap comes from.
    rows_pc = [(r, l) for r, l, _ in ROWS if r.startswith("imbalanced")]
    pcs = {(r, i): per_class(res[r][i]) for r, _ in rows_pc for i in (0, 1)}
    classes = sorted({c for v in pcs.values() for c in v})
    if classes:
        L.append("\n## Imbalanced subset: per-class val accuracy\n")
        L.append("Last epoch, mean ± std over the seeds that recorded it. Train photos per class: daisy 600, dandelion 400, "
                 "rose 150, sunflower 100, tulip 50 (val has all of each class).\n")
        L.append("| class | " + " | ".join(f"{side} {l.split(', ')[1]}" for r, l in rows_pc for side in ("Finch", "timm")) + " |")
        L.append("|---|" + "---|" * (2 * len(rows_pc)))
        for c in classes:
            L.append(f"| {c} | " + " | ".join(fmt_list(pcs[(r, i)].get(c)) for r, _ in rows_pc for i in (0, 1)) + " |")

    ck = os.path.join(a.dir, "onnx-check.json")
    if os.path.exists(ck):
        with open(ck) as f:
            c = json.load(f)
        L.append("\n## The distilled student, exported\n")
        L.append("`finch export --checkpoint Checkpoints/table/finch-distill-s<first seed>/flowers-lite0-distill/latest/best.h5 --format onnx|safetensors`, then "
                 "`Experiments/onnx_check.py` runs ONNX Runtime on exactly the val inputs Finch evaluated (`finch evaluate --save-outputs`):\n")
        L.append("| engine | val top-1 | max abs logit difference vs Finch | argmax agreement |")
        L.append("|---|---|---|---|")
        L.append(f"| Finch | {c['finch_top1']:.4f} | – | – |")
        L.append(f"| ONNX Runtime {c.get('onnxruntime', '')} | {c['ort_top1']:.4f} | {c['ort_max_abs_diff']:.3g} (largest logit {c['logit_scale']:.3g}) | {c['ort_argmax_agree']:.4f} |")
        if "timm_top1" in c:
            L.append(f"| timm, loading the safetensors export strictly | {c['timm_top1']:.4f} | {c['timm_max_abs_diff']:.3g} | – |")
        L.append(f"\n({c['images']} val images.)")
    with open(a.output + ".tmp", "w") as f:
        f.write("\n".join(L) + "\n")
    os.replace(a.output + ".tmp", a.output)


if __name__ == "__main__":
    main()
