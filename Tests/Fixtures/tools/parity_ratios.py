"""RATIOS.md's tables from a `.ci/parity` log (PARITY_LOG=FILE).

Each log line is "PATH THREADS FIXTURE SUMMARY", SUMMARY being the per-family line `finch compare`
prints ("…: eval.logits: max|Δ|=… rel=… ratio=0.56; grad: … ratio=1.04; … — compare: PASS k/k checks").
A ratio is Finch's distance to float64 ÷ PyTorch float32's (the largest over make_parity.py's ORDERS);
the rule fails above 3 (plus a 4-ulp floor, so a ratio above 3 can still pass).

Prints markdown: one table per model (worst over its resolutions and thread counts) with a column
group per kernel path, then per path one table per fixture and thread count.

Usage: python parity_ratios.py LOG [TITLE] > table.md
"""
import re, sys
from collections import defaultdict

FAMILY = re.compile(r"([\w.]+): max\|Δ\|=[^ ;]+ rel=[^ ;—]+(?: ratio=([^ ;—]+))?")
VERDICT = re.compile(r"compare: (PASS|FAIL) (\d+)/(\d+) checks")
PATHS = ["generic", "avx2", "avx512"]


def ratio(text):
    return float("inf") if text == "inf" else float(text)


def parse(path):
    runs = {}  # (fixture, path, threads) -> {"logits", "loss", "grad", "evalgrad", "fail", "checks"}
    for line in open(path, encoding="utf-8"):
        parts = line.split(" ", 3)
        if len(parts) < 4:
            continue
        kp, threads, fixture, summary = parts
        fam = {m.group(1): ratio(m.group(2)) for m in FAMILY.finditer(summary) if m.group(2)}
        v = VERDICT.search(summary)
        if not fam or not v:
            runs[(fixture, kp, int(threads))] = None  # the run crashed or printed no summary
            continue
        runs[(fixture, kp, int(threads))] = dict(
            logits=max(fam.get("eval.logits", 0), fam.get("train.logits", 0)), loss=fam.get("train.loss", 0),
            grad=fam.get("grad", 0), evalgrad=fam.get("evalgrad"),
            fail=int(v.group(2)) if v.group(1) == "FAIL" else 0, checks=int(v.group(3)))
    return runs


def fmt(r):
    if r is None:
        return "-"
    return "inf" if r == float("inf") else (f"{r:.2f}" if r < 10 else f"{r:.1f}")


def model_of(fixture):
    m = re.match(r"(.+?)_(imagenet_)?\d+_\d+$", fixture)
    return (m.group(1) + ("_imagenet" if m.group(2) else "")) if m else fixture


def main():
    runs = parse(sys.argv[1])
    fixtures = sorted({f for f, _, _ in runs}, key=lambda f: (model_of(f), int(re.findall(r"_(\d+)_\d+$", f)[0])))
    paths = [p for p in PATHS if any(k[1] == p for k in runs)]
    threads = sorted({t for _, _, t in runs})
    crashed = sorted(k for k, v in runs.items() if v is None)
    ok = {k: v for k, v in runs.items() if v is not None}

    def worst(keys, field):
        vals = [ok[k][field] for k in keys if k in ok and ok[k][field] is not None]
        return max(vals) if vals else None

    print(f"{len(runs)} runs: paths {' '.join(paths)} × threads {' '.join(map(str, threads))}; "
          f"{sum(1 for v in ok.values() if v['fail'])} over the rule, {len(crashed)} without a summary.\n")
    print("### Worst ratio per model and kernel path (over its resolutions and 1/2/3 threads)\n")
    head = "| model | " + " | ".join(f"{p} logits | {p} loss | {p} grad" for p in paths) + " | runs over the rule |"
    print(head)
    print("|" + "---|" * (2 + 3 * len(paths)))
    for model in sorted({model_of(f) for f in fixtures}):
        cells, failing = [], 0
        for p in paths:
            keys = [k for k in runs if model_of(k[0]) == model and k[1] == p]
            failing += sum(1 for k in keys if ok.get(k) is None or ok[k]["fail"])
            g, e = worst(keys, "grad"), worst(keys, "evalgrad")
            cells += [fmt(worst(keys, "logits")), fmt(worst(keys, "loss")),
                      fmt(g) + (f" (eval {fmt(e)})" if e is not None else "")]
        nruns = sum(1 for k in runs if model_of(k[0]) == model)
        print(f"| {model} | " + " | ".join(cells) + f" | {failing}/{nruns} |")
    for p in paths:
        print(f"\n### FINCH_KERNELS={p}: logits / loss / grad per thread count\n")
        print("| fixture | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in threads) + " | verdict |")
        print("|" + "---|" * (2 + len(threads)))
        for f in fixtures:
            cells, verdicts = [], []
            for t in threads:
                r = runs.get((f, p, t), "missing")
                if r == "missing":
                    cells.append("")
                elif r is None:
                    cells.append("no summary")
                    verdicts.append(f"{t}t crashed")
                else:
                    cells.append(f"{fmt(r['logits'])} / {fmt(r['loss'])} / {fmt(r['grad'])}"
                                 + (f" (eval {fmt(r['evalgrad'])})" if r["evalgrad"] is not None else ""))
                    if r["fail"]:
                        verdicts.append(f"{t}t FAIL {r['fail']}/{r['checks']}")
            print(f"| {f} | " + " | ".join(cells) + f" | {', '.join(verdicts) or 'PASS'} |")
    if crashed:
        print("\nWithout a summary: " + ", ".join(f"{f} {p} {t}t" for f, p, t in crashed))


if __name__ == "__main__":
    main()
