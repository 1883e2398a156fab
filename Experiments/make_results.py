#!/usr/bin/env python3
"""Writes Experiments/RESULTS.md from the JSON that Experiments/run_table.sh collects (standard
library only). Every number in the file comes from those runs; nothing here is typed in."""
import argparse, datetime, glob, json, os, platform, re, statistics, subprocess

ROWS = [("ncm", "pretrained as-is", "frozen ImageNet Lite0, nearest class mean (cosine) of pooled features, no training"),
        ("head", "head-only", "backbone frozen (BatchNorm in eval mode), new zero-initialised head, AdamW 3e-3"),
        ("full", "full", "everything trained, AdamW 3e-4, stem 1e-5, head 10× (3e-3), cosine, label smoothing 0.1"),
        ("mixup", "full + MixUp/CutMix", "as full, MixUp α 0.2 / CutMix α 1.0 (switch 0.5), RandAugment rand-m6-mstd0.5-inc1, smoothing 0.1"),
        ("teacher", "teacher (Lite2)", "tf_efficientnet_lite2, full fine-tuning as the full row"),
        ("distill", "distillation", "Lite0 as full + soft KD from the teacher row's best epoch, α 0.5, T 2"),
        ("imbalanced-plain", "imbalanced, uniform", "full on 600/400/150/100/50 train photos per class, uniform shuffling"),
        ("imbalanced-weighted", "imbalanced, weighted", "the same subset, class-balanced WeightedRandomSampler (with replacement)")]


def load(d, side, row, seeds):
    out = []
    for s in seeds:
        p = os.path.join(d, f"{side}-{row}-s{s}.json")
        if os.path.exists(p):
            with open(p) as f:
                r = json.load(f)
            hist = os.path.join(d, f"{side}-{row}-s{s}.jsonl")
            if os.path.exists(hist):
                with open(hist) as f:
                    r["history"] = [json.loads(l) for l in f if l.strip()]
            out.append(r)
    return out


def mean(runs, key):
    vals = [r["final"][key] for r in runs if key in r.get("final", {})]
    return statistics.mean(vals) if vals else None


def fmt(runs, key, spec="{:.3f}"):
    vals = [r["final"][key] for r in runs if key in r.get("final", {})]
    return " / ".join(spec.format(v) for v in vals) if vals else "–"


def fmt_top(runs, key, spec):
    vals = [r[key] for r in runs if key in r]
    return " / ".join(spec.format(v) for v in vals) if vals else "–"


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


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:
        return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--epochs", required=True)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--output", required=True)
    a = ap.parse_args()
    seeds = a.seeds.split()
    res = {row: (load(a.dir, "finch", row, seeds), load(a.dir, "timm", row, seeds)) for row, _, _ in ROWS}
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    swift = sh("swift --version 2>&1 | head -1")
    timm_v = next((r[0].get("timm") for _, (_, t) in res.items() for r in [t] if r), None)
    torch_v = next((r[0].get("torch") for _, (_, t) in res.items() for r in [t] if r), None)

    L = []
    L.append("# Flowers fine-tuning: Finch and timm side by side\n")
    L.append(f"Written by `Experiments/run_table.sh` (EPOCHS={a.epochs}, SEEDS=\"{a.seeds}\") on "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC at commit `{sh('git rev-parse --short HEAD') or '?'}`; "
             f"{cpu or platform.processor()}, {os.cpu_count()} logical CPUs, {swift or 'Swift ?'}"
             + (f"; timm {timm_v}, torch {torch_v}" if timm_v else "; timm not run") + ". "
             "Every number below is read from the runs' own JSON by `Experiments/make_results.py`.\n")
    ntrain = next((r[0].get("train_images") for _, (f, t) in res.items() for r in [t] if r and r[0].get("train_images")), None)
    L.append("Setup: student `tf_efficientnet_lite0`, teacher `tf_efficientnet_lite2`, both from the ImageNet weights in `Checkpoints/`; "
             "`Datasets/flowers` train (3,668 photos) / val (649 photos), 5 classes, 128 px for every row (train: RandomResizedCrop "
             "scale 0.25–1, flip, colour jitter 0.3 unless stated; eval: resize to 146, centre crop 128, bicubic); batch 32, "
             "2 threads and 2 loader workers on both sides, the same configs (`Experiments/flowers*.yaml`) read by both. "
             "Val columns are the last epoch's; wall time is the whole run (training and the per-epoch val passes); "
             "train img/s is the last epoch's training pass, eval img/s the last val pass (decode and transform included).\n")

    L.append("| row | Finch top-1 | timm top-1 | Δ top-1 (pts) | Finch bal. acc. | timm bal. acc. | params | epochs | Finch wall s | timm wall s | Finch train img/s | timm train img/s | Finch eval img/s | timm eval img/s |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row, label, _ in ROWS:
        f, t = res[row]
        mf, mt = mean(f, "val/top1"), mean(t, "val/top1")
        delta = f"{100 * (mf - mt):+.1f}" if mf is not None and mt is not None else "–"
        ep = str(f[0]["epochs_run"]) if f else (str(t[0]["epochs_run"]) if t else "–")
        L.append(f"| {label} | {fmt(f, 'val/top1')} | {fmt(t, 'val/top1')} | {delta} | {fmt(f, 'val/balanced_accuracy')} | "
                 f"{fmt(t, 'val/balanced_accuracy')} | {params(f or t)} | {ep} | {fmt_top(f, 'total_seconds', '{:.0f}')} | "
                 f"{fmt_top(t, 'total_seconds', '{:.0f}')} | {fmt(f, 'train/img_per_s', '{:.1f}')} | {fmt(t, 'train/img_per_s', '{:.1f}')} | "
                 f"{fmt(f, 'val/img_per_s', '{:.1f}')} | {fmt(t, 'val/img_per_s', '{:.1f}')} |")
    if len(seeds) > 1:
        L.append("\nWith several seeds, each cell lists one value per seed (offsets " + ", ".join(seeds) + "); Δ compares the means.")
    L.append("\nWhat each row is:\n")
    for row, label, what in ROWS:
        L.append(f"- **{label}**: {what}.")
    L.append("\nVal top-1 per epoch (Finch | timm):\n")
    for row, label, _ in ROWS:
        f, t = res[row]
        if row != "ncm":
            L.append(f"- {label}: {curve(f)} | {curve(t)}")

    L.append("\n## What the table shows\n")
    for side, i in (("Finch", 0), ("timm", 1)):
        h, fu, di = (mean(res[r][i], "val/top1") for r in ("head", "full", "distill"))
        if None in (h, fu, di):
            L.append(f"- {side}: not all of head-only, full and distillation were run.")
            continue
        holds = h < fu <= di
        L.append(f"- {side}: head-only {h:.3f}, full {fu:.3f}, distillation {di:.3f}: head-only < full ≤ distillation "
                 f"{'holds' if holds else 'does not hold'} (full − head-only {100 * (fu - h):+.1f} pts, distillation − full {100 * (di - fu):+.1f} pts).")
    for side, i in (("Finch", 0), ("timm", 1)):
        p, w = mean(res["imbalanced-plain"][i], "val/balanced_accuracy"), mean(res["imbalanced-weighted"][i], "val/balanced_accuracy")
        if p is not None and w is not None:
            L.append(f"- {side}, imbalanced subset: balanced accuracy {p:.3f} with uniform sampling, {w:.3f} with class-balanced "
                     f"weighted sampling ({100 * (w - p):+.1f} pts).")
    gaps = []
    for row, label, _ in ROWS:
        mf, mt = mean(res[row][0], "val/top1"), mean(res[row][1], "val/top1")
        if mf is not None and mt is not None:
            gaps.append((abs(mf - mt), label, mf - mt))
    if gaps:
        within = [g for g in gaps if g[0] <= 0.01]
        L.append(f"- Finch within 1 point of timm on {len(within)} of {len(gaps)} rows"
                 + ("" if len(within) == len(gaps) else "; outside: " + ", ".join(f"{l} ({100 * d:+.1f})" for _, l, d in gaps if _ > 0.01)) + ".")

    ck = os.path.join(a.dir, "onnx-check.json")
    if os.path.exists(ck):
        with open(ck) as f:
            c = json.load(f)
        L.append("\n## The distilled student, exported\n")
        L.append("`finch export --checkpoint Checkpoints/flowers-lite0-distill/latest/best.h5 --format onnx|safetensors`, then "
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
