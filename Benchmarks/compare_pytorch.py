"""Finch beside PyTorch + timm on the same workload, alternating the two so machine noise hits
both alike. For each model, --rounds rounds of (finch bench, bench_pytorch.py) or the reverse
order on odd rounds; each run is a fresh process, so peak memory is per run. Reports the median
over rounds and the ratios Finch/PyTorch (throughput: higher is better; memory: lower is better).

Usage (from the repository root, after `swift build -c release --product finch`):
  python3 Benchmarks/compare_pytorch.py --models mobilenetv3_small_100 mobilevit_xxs resnet18 tf_efficientnet_lite0
--kernels avx2 (or generic, avx512) runs finch with FINCH_KERNELS set, so an AVX-512 machine measures
the code AVX2-only CPUs run; every finch run prints the kernels= and blas= it reported.
"""
import argparse, os, re, statistics, subprocess, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LINE = re.compile(r"train images/s=([\d.]+) eval images/s=([\d.]+) peak_rss_mib=([\d.]+)")
# finch bench's header: `... blas=Zen kernels=avx2 (FINCH_KERNELS=avx512 clamped) ...`.
KERNELS = re.compile(r"blas=(\S+) kernels=(\S+(?: \(FINCH_KERNELS=\S+ clamped\))?)")


def run(cmd, env=None):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    m = LINE.search(out.stdout.strip().splitlines()[-1])
    if not m:
        sys.exit(f"{' '.join(cmd)}: no result line in\n{out.stdout}")
    k = KERNELS.search(out.stdout)
    if k:
        print(f"  {os.path.basename(cmd[0])} {' '.join(cmd[1:4])}: kernels={k.group(2)} blas={k.group(1)}", flush=True)
    return tuple(float(v) for v in m.groups())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["mobilenetv3_small_100", "mobilevit_xxs", "resnet18",
                                                     "tf_efficientnet_lite0"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--finch", default=os.path.join(".build", "release", "finch"))
    ap.add_argument("--kernels", choices=["generic", "avx2", "avx512"],
                    help="FINCH_KERNELS for the finch runs (default: the CPU's best path)")
    a = ap.parse_args()
    finch_env = dict(os.environ)
    if a.kernels:
        finch_env["FINCH_KERNELS"] = a.kernels
    common = ["--batch", str(a.batch), "--resolution", str(a.resolution), "--threads", str(a.threads),
              "--steps", str(a.steps)]
    rows = []
    for model in a.models:
        f, p = [], []
        for r in range(a.rounds):
            fc = [a.finch, "bench", "--model", model] + common
            pc = [sys.executable, os.path.join("Benchmarks", "bench_pytorch.py"), "--model", model] + common
            if r % 2 == 0:
                f.append(run(fc, finch_env)); p.append(run(pc))
            else:
                p.append(run(pc)); f.append(run(fc, finch_env))
        med = lambda xs, i: statistics.median(x[i] for x in xs)
        row = (model, med(f, 0), med(p, 0), med(f, 1), med(p, 1), med(f, 2), med(p, 2))
        rows.append(row)
        print(f"{model}: train {row[1]:.1f} vs {row[2]:.1f} img/s, eval {row[3]:.1f} vs {row[4]:.1f} img/s, "
              f"peak {row[5]:.0f} vs {row[6]:.0f} MiB", flush=True)
    print()
    print(f"batch {a.batch}, {a.resolution} px, {a.threads} threads, median of {a.rounds} alternating rounds "
          f"({a.steps} timed steps each), FINCH_KERNELS={a.kernels or '(unset: best path)'}")
    print("| model | Finch train img/s | PyTorch train img/s | ratio | Finch eval img/s | PyTorch eval img/s | ratio "
          "| Finch peak MiB | PyTorch peak MiB | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m, ft, pt, fe, pe, fm, pm in rows:
        print(f"| {m} | {ft:.1f} | {pt:.1f} | {ft / pt:.2f}× | {fe:.1f} | {pe:.1f} | {fe / pe:.2f}× | {fm:.0f} | {pm:.0f} "
              f"| {fm / pm:.2f}× |")


if __name__ == "__main__":
    main()
