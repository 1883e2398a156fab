"""The workload of `finch bench --model NAME` in PyTorch + timm: same model, batch, resolution,
thread count, loss (cross-entropy) and optimizer (AdamW lr 1e-4, weight decay 0.05), synthetic
input; median of --steps timed steps after --warmup. Prints the same last line as Finch:
`train images/s=… eval images/s=… peak_rss_mib=…` (peak RSS of this process, like Finch's VmHWM).

Needs: pip install torch timm (a CPU wheel). Usage:
  python3 Benchmarks/bench_pytorch.py --model mobilenetv3_small_100 --batch 32 --resolution 128 --threads 2
"""
import argparse, os, resource, statistics, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "tools"))


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_capability(torch):
    """ATen's vector path (ATEN_CPU_CAPABILITY clamps it), with the oneDNN/MKL switches if set, so a
    figure says which instruction set PyTorch ran."""
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        cap = "unknown"
    extra = [f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS") if k in os.environ]
    return ",".join([cap] + extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--train-only", action="store_true")
    a = ap.parse_args()
    import torch
    try:
        import timm
    except Exception:   # a torchvision that cannot load beside a CPU-only torch: stand in for it
        import torchvision_stub
        torchvision_stub.install()
        import timm
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = timm.create_model(a.model, num_classes=a.num_classes)
    x = torch.randn(a.batch, 3, a.resolution, a.resolution)
    y = torch.randint(0, a.num_classes, (a.batch,))
    print(f"model={a.model} params={sum(p.numel() for p in model.parameters())} batch={a.batch} "
          f"resolution={a.resolution} threads={a.threads} steps={a.steps} (median after {a.warmup} warm-up) "
          f"torch={torch.__version__} timm={timm.__version__} cpu_capability={cpu_capability(torch)}")
    train_rate = eval_rate = 0.0
    if not a.eval_only:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
        loss_fn = torch.nn.CrossEntropyLoss()
        times = []
        for i in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            t = time.perf_counter() - t0
            if i >= a.warmup:
                times.append(t)
        m = statistics.median(times)
        train_rate = a.batch / m
        print(f"train: {m * 1000:.1f} ms/step  {train_rate:.1f} images/s  peak_rss_mib={peak_rss_mib():.1f}")
    if not a.train_only:
        model.eval()
        times = []
        with torch.no_grad():
            for i in range(a.warmup + a.steps):
                t0 = time.perf_counter()
                model(x)
                t = time.perf_counter() - t0
                if i >= a.warmup:
                    times.append(t)
        m = statistics.median(times)
        eval_rate = a.batch / m
        print(f"eval:  {m * 1000:.1f} ms/step  {eval_rate:.1f} images/s  peak_rss_mib={peak_rss_mib():.1f}")
    print(f"train images/s={train_rate:.1f} eval images/s={eval_rate:.1f} peak_rss_mib={peak_rss_mib():.1f}")


if __name__ == "__main__":
    main()
