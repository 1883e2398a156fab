"""Finch beside PyTorch + timm on the same workload, alternating the two so machine noise hits
both alike. For each model (and, with --sweep, each resolution × batch), --rounds rounds of
(finch bench, bench_pytorch.py), the order reversed on odd rounds; each run is a fresh process, so
peak memory is per run. Reports the median over rounds of each figure and the ratios Finch/PyTorch
(throughput: higher is better; memory: lower is better), and the achieved GFLOP/s of both sides
priced with Finch's FLOP count of the model (the same work for both; convolutions and matmuls,
2 FLOPs per multiply-add, a training step = 3 × forward) beside raw sgemm's on the same machine.

Usage (from the repository root, after `swift build -c release`):
  python3 Benchmarks/compare_pytorch.py --models mobilenetv3_small_100 mobilevit_xxs resnet18 tf_efficientnet_lite0
  python3 Benchmarks/compare_pytorch.py --sweep --markdown scaling.md     # batch 1/8/32/64 × 128/224 px
  python3 Benchmarks/compare_pytorch.py --sweep --batches 1 32 --resolutions 224 --models resnet18
Batch 1 cannot train (BatchNorm needs more than one value per channel, on both sides): it is measured
in eval mode only and reported as latency (ms/image), the deployment case.

--kernels avx2 (or generic, avx512) runs finch with FINCH_KERNELS set and OpenBLAS on the kernels
such a CPU would use (Zen for avx2, Prescott for generic, as .ci/parity does), and PyTorch with its
own switches to the same instruction set (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA,
MKL_ENABLE_INSTRUCTIONS), so an AVX-512 machine measures what AVX2-only CPUs run on both sides. A
variable already set in the environment is left as it is. Every run's kernels= / blas= (Finch) and
cpu_capability= (PyTorch) are printed and recorded in the markdown.
"""
import argparse, datetime, os, re, shlex, statistics, subprocess, sys, time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LINE = re.compile(r"train images/s=([\d.]+) eval images/s=([\d.]+) peak_rss_mib=([\d.]+)")
# finch bench's header: `... blas=Zen kernels=avx2 (FINCH_KERNELS=avx512 clamped) ...`.
KERNELS = re.compile(r"blas=(\S+) kernels=(\S+(?: \(FINCH_KERNELS=\S+ clamped\))?)")
GFLOPS = re.compile(r"gflops: forward_flop_per_image=(\d+) .*?sgemm_gflops=([\d.]+)")
CAPABILITY = re.compile(r"cpu_capability=(\S+)")

# What a CPU with only that instruction set runs, per side. OpenBLAS: Haswell's kernels under the name
# the AVX2-only EPYCs report (Zen); SSE3 for generic. PyTorch: ATen's vectorised kernels, oneDNN's
# convolutions and MKL's GEMM each have their own switch.
PAIRING = {
    "generic": ({"FINCH_KERNELS": "generic", "OPENBLAS_CORETYPE": "Prescott"},
                {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}),
    "avx2": ({"FINCH_KERNELS": "avx2", "OPENBLAS_CORETYPE": "Zen"},
             {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
    "avx512": ({"FINCH_KERNELS": "avx512"}, {"ATEN_CPU_CAPABILITY": "avx512"}),
}

# Rough images/s (train, eval) at 128 px, batch 32, 2 threads, for the time estimate only; refined
# from the runs as they finish.
GUESS = {"mobilenetv3_small_100": (300, 1300), "mobilevit_xxs": (120, 450), "resnet18": (50, 180),
         "tf_efficientnet_lite0": (65, 300), "resnet50": (18, 60)}
GUESS_DEFAULT = (40, 150)
OVERHEAD_S = {"finch": 2.0, "pytorch": 5.0}   # process start, model build (and for PyTorch, imports)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def git_commit():
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


class Run:
    """One process's figures: train and eval images/s, peak RSS, and what it reported about itself."""

    def __init__(self, cmd, env):
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
        lines = out.stdout.strip().splitlines()
        m = LINE.search(lines[-1]) if lines else None
        if not m:
            sys.exit(f"{' '.join(cmd)}: no result line in\n{out.stdout}")
        self.train, self.eval, self.rss = (float(v) for v in m.groups())
        k = KERNELS.search(out.stdout)
        self.kernels = f"kernels={k.group(2)} blas={k.group(1)}" if k else None
        g = GFLOPS.search(out.stdout)
        self.flop, self.sgemm = (int(g.group(1)), float(g.group(2))) if g else (None, None)
        c = CAPABILITY.search(out.stdout)
        self.capability = c.group(1) if c else None


def minutes(seconds):
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def median(runs, attr):
    values = [getattr(r, attr) for r in runs if getattr(r, attr) is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "–"


def num(x, digits=1):
    return f"{x:.{digits}f}" if x else "–"


class Estimate:
    """Seconds a run is expected to take: overhead + steps × images / rate, the rate guessed per model
    and corrected by the ratio of measured to predicted time over the runs so far."""

    def __init__(self, a):
        self.a, self.predicted, self.measured = a, 0.0, 0.0

    def run(self, side, model, res, batch):
        train, eval_ = GUESS.get(model, GUESS_DEFAULT)
        scale = (res / 128) ** 2
        if side == "pytorch":
            train, eval_ = train / 1.5, eval_ / 1.2
        work = (self.a.warmup + self.a.steps) * batch * scale * ((0 if batch == 1 else 1 / train) + 1 / eval_)
        return OVERHEAD_S[side] + work

    def correction(self):
        return self.measured / self.predicted if self.predicted else 1.0

    def record(self, predicted, seconds):
        self.predicted += predicted
        self.measured += seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["mobilenetv3_small_100", "mobilevit_xxs", "resnet18",
                                                     "tf_efficientnet_lite0"])
    ap.add_argument("--sweep", action="store_true",
                    help="the scaling table: every --batches × --resolutions (default 1 8 32 64 × 128 224)")
    ap.add_argument("--batches", type=int, nargs="+", help="batch sizes (default: --batch, or 1 8 32 64 with --sweep)")
    ap.add_argument("--resolutions", type=int, nargs="+",
                    help="resolutions (default: --resolution, or 128 224 with --sweep)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--finch", default=os.path.join(".build", "release", "finch"))
    ap.add_argument("--pytorch-bench", default=os.path.join("Benchmarks", "bench_pytorch.py"),
                    help="the PyTorch side's script (run with this Python)")
    ap.add_argument("--kernels", choices=sorted(PAIRING),
                    help="instruction set for both sides (default: each side's best path on this CPU)")
    ap.add_argument("--markdown", metavar="FILE", help="also write the tables, with CPU and command, to FILE")
    a = ap.parse_args()
    batches = a.batches or ([1, 8, 32, 64] if a.sweep else [a.batch])
    resolutions = a.resolutions or ([128, 224] if a.sweep else [a.resolution])
    for name, values, low in (("batches", batches, 1), ("resolutions", resolutions, 16),
                              ("threads", [a.threads], 1), ("steps", [a.steps], 1), ("rounds", [a.rounds], 1),
                              ("warmup", [a.warmup], 0)):
        bad = [v for v in values if v < low]
        if bad:
            ap.error(f"--{name} must be ≥ {low}, got {bad[0]}")

    finch_env, torch_env = dict(os.environ), dict(os.environ)
    forced = {}
    if a.kernels:
        f_vars, t_vars = PAIRING[a.kernels]
        for env, vars_ in ((finch_env, f_vars), (torch_env, t_vars)):
            for k, v in vars_.items():
                env.setdefault(k, v)
                forced[k] = env[k]
    print("environment: " + (" ".join(f"{k}={v}" for k, v in forced.items()) or "(nothing forced: best paths)"),
          flush=True)

    configs = [(m, r, b) for m in a.models for r in resolutions for b in batches]
    est = Estimate(a)
    total = sum(est.run(s, m, r, b) for m, r, b in configs for s in ("finch", "pytorch")) * a.rounds
    n_runs = 2 * len(configs) * a.rounds
    print(f"{len(configs)} configurations × {a.rounds} rounds × 2 sides = {n_runs} runs, "
          f"estimated {minutes(total)} (refined as runs finish)", flush=True)

    start = time.monotonic()
    done_predicted = 0.0
    done = 0
    rows, seen_kernels, seen_capability = [], set(), set()
    for model, res, batch in configs:
        common = ["--batch", str(batch), "--resolution", str(res), "--threads", str(a.threads),
                  "--steps", str(a.steps), "--warmup", str(a.warmup)]
        if batch == 1:
            common.append("--eval-only")
        fc = [a.finch, "bench", "--model", model] + common
        pc = [sys.executable, a.pytorch_bench, "--model", model] + common
        f, p = [], []
        for r in range(a.rounds):
            order = [("finch", fc, finch_env, f), ("pytorch", pc, torch_env, p)]
            for side, cmd, env, into in (order if r % 2 == 0 else order[::-1]):
                predicted = est.run(side, model, res, batch)
                t0 = time.monotonic()
                run = Run(cmd, env)
                est.record(predicted, time.monotonic() - t0)
                into.append(run)
                done += 1
                done_predicted += predicted
                if run.kernels:
                    seen_kernels.add(run.kernels)
                if run.capability:
                    seen_capability.add(run.capability)
                left = (total - done_predicted) * est.correction()
                print(f"  [{done}/{n_runs}] {side} {model} {res}px batch {batch} round {r + 1}: "
                      f"train {run.train:.1f} eval {run.eval:.1f} img/s, peak {run.rss:.0f} MiB"
                      f"{'  ' + run.kernels if run.kernels else ''}"
                      f"{'  cpu_capability=' + run.capability if run.capability else ''}; "
                      f"{minutes(time.monotonic() - start)} elapsed, ~{minutes(left)} left", flush=True)
        row = dict(model=model, res=res, batch=batch,
                   ft=median(f, "train"), pt=median(p, "train"), fe=median(f, "eval"), pe=median(p, "eval"),
                   fm=median(f, "rss"), pm=median(p, "rss"), flop=median(f, "flop"), sgemm=median(f, "sgemm"))
        rows.append(row)
        print(f"{model} {res}px batch {batch}: train {num(row['ft'])} vs {num(row['pt'])} img/s, "
              f"eval {num(row['fe'])} vs {num(row['pe'])} img/s, peak {num(row['fm'], 0)} vs {num(row['pm'], 0)} MiB",
              flush=True)

    cmd = "python3 Benchmarks/compare_pytorch.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    header = [
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_name()}, {os.cpu_count()} CPUs visible, "
        f"build {git_commit()}; Finch {', '.join(sorted(seen_kernels)) or '(kernels not reported)'}; "
        f"PyTorch cpu_capability={', '.join(sorted(seen_capability)) or '(not reported)'}; "
        + (" ".join(f"`{k}={v}`" for k, v in forced.items()) or "no instruction-set switches (each side's best path)") + ".",
        f"{a.threads} threads, median of {a.rounds} alternating rounds ({a.steps} timed steps after {a.warmup} "
        f"warm-up each), fresh process per run; ratios are Finch ÷ PyTorch (images/s: higher is better, "
        f"memory: lower is better). Batch 1 is eval only.",
        f"Command: `{cmd}`",
    ]
    tables = [header, [""]]
    t = ["| model | px | batch | Finch train img/s | PyTorch train img/s | ratio | Finch eval img/s | "
         "PyTorch eval img/s | ratio | Finch peak MiB | PyTorch peak MiB | ratio |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in rows:
        t.append(f"| {w['model']} | {w['res']} | {w['batch']} | {num(w['ft'])} | {num(w['pt'])} | {ratio(w['ft'], w['pt'])} "
                 f"| {num(w['fe'])} | {num(w['pe'])} | {ratio(w['fe'], w['pe'])} | {num(w['fm'], 0)} | {num(w['pm'], 0)} "
                 f"| {ratio(w['fm'], w['pm'])} |")
    tables += [t, [""]]
    latency = [w for w in rows if w["batch"] == 1]
    if latency:
        t = ["Batch-1 latency (eval, ms/image; speed ratio = PyTorch ms ÷ Finch ms, ≥ 1.00× is Finch faster):", "",
             "| model | px | Finch ms | PyTorch ms | speed ratio |", "|---|---|---|---|---|"]
        for w in latency:
            fl, pl = (1000 / w["fe"] if w["fe"] else None), (1000 / w["pe"] if w["pe"] else None)
            t.append(f"| {w['model']} | {w['res']} | {num(fl, 2)} | {num(pl, 2)} | {ratio(pl, fl)} |")
        tables += [t, [""]]
    t = ["Achieved GFLOP/s, both sides priced with Finch's count of the model's forward FLOPs (convolutions and "
         "matmuls, 2 per multiply-add; a training step = 3 × forward), beside `cblas_sgemm` 512³ at the same "
         "thread count (Finch's OpenBLAS, measured in each Finch run):", "",
         "| model | px | batch | GFLOP/image | Finch train GFLOP/s | PyTorch train GFLOP/s | Finch eval GFLOP/s "
         "| PyTorch eval GFLOP/s | sgemm GFLOP/s | Finch train ÷ sgemm | Finch eval ÷ sgemm |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in rows:
        if not w["flop"]:
            continue
        g = w["flop"] / 1e9
        ftg, ptg = (3 * g * w["ft"] if w["ft"] else None), (3 * g * w["pt"] if w["pt"] else None)
        feg, peg = (g * w["fe"] if w["fe"] else None), (g * w["pe"] if w["pe"] else None)
        s = w["sgemm"]
        t.append(f"| {w['model']} | {w['res']} | {w['batch']} | {g:.4g} | {num(ftg)} | {num(ptg)} | {num(feg)} | {num(peg)} "
                 f"| {num(s)} | {num(ftg / s if ftg and s else None, 2)} | {num(feg / s if feg and s else None, 2)} |")
    tables.append(t)
    text = "\n".join(line for block in tables for line in block)
    print()
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as out:
            out.write(text + "\n")
        print(f"\nwritten to {a.markdown}")


if __name__ == "__main__":
    main()
