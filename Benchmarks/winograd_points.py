#!/usr/bin/env python3
"""Winograd F(4×4, 3×3) interpolation points: float32 rounding error against float64 (issue 27, item 5).

Derives the Toom–Cook matrices for a point set exactly (fractions), checks in float64 that they
compute the 3×3 correlation, then runs a ResNet-like 3×3 convolution with every step rounded to
float32 (the transforms one operation at a time, the per-ξ channel sums through float32 GEMM as
OpenBLAS does) and reports the error against the float64 direct convolution, as a ratio to
F(2×2, 3×3)'s on the same data. Also splits the error by stage (only one stage in float32).

    python3 Benchmarks/winograd_points.py            # the table in Benchmarks/WinogradRounding.md
    python3 Benchmarks/winograd_points.py --search   # also scan c in {0, ±c, ±1/c, ∞}

Data: the input is a ReLU'd batch-normalised activation (half of it zero, the rest |N(0, 1)|), the
weights Kaiming-normal (std √(2 / 9C)), 64 channels on 16×16 and 256 channels on 8×8 (ResNet's
layer1 and layer3 3×3 convolutions at 64–128 px), plus uniform(−1, 1) data as in WinogradF4Tests.
"""
import argparse
import sys
from fractions import Fraction as Fr

import numpy as np
import sympy


def toom_cook(points, m, r):
    """Aᵀ (m×n), G (n×r), Bᵀ (n×n) as Fractions for the finite `points` plus ∞, with
    y = Aᵀ[(G·g) ⊙ (Bᵀ·d)] the correlation y_i = Σ_k g_k d_{i+k}. Rows of Bᵀ are scaled to
    coprime integers and G carries the inverse scale, which keeps the data transform exact in
    float32 for integer-valued coefficients."""
    n = m + r - 1
    assert len(points) == n - 1 and len(set(points)) == n - 1
    pts = [Fr(p) for p in points]
    # Evaluation of a polynomial of degree < k at the points (∞ gives the leading coefficient).
    def evaluation(k):
        rows = [[p ** i for i in range(k)] for p in pts]
        rows.append([Fr(int(i == k - 1)) for i in range(k)])
        return rows
    at = [list(col) for col in zip(*evaluation(m))]          # m × n
    g = evaluation(r)                                        # n × r
    v = sympy.Matrix([[sympy.Rational(x.numerator, x.denominator) for x in row] for row in evaluation(n)])
    vinv_t = v.inv().T                                       # Bᵀ = V⁻ᵀ (transposed interpolation)
    bt = [[Fr(int(vinv_t[i, j].p), int(vinv_t[i, j].q)) for j in range(n)] for i in range(n)]
    for i in range(n):
        den = 1
        for x in bt[i]:
            den = den * x.denominator // np.gcd(den, x.denominator)
        num = 0
        for x in bt[i]:
            num = int(np.gcd(num, int(x * den)))
        scale = Fr(den, num)
        bt[i] = [x * scale for x in bt[i]]
        g[i] = [x / scale for x in g[i]]
    return at, g, bt


def check_exact(at, g, bt, m, r):
    """Largest float64 error of the matrices on random data (should be ~1e-15)."""
    rng = np.random.default_rng(0)
    A, G, B = (np.array(x, dtype=np.float64) for x in (at, g, bt))
    n = m + r - 1
    worst = 0.0
    for _ in range(20):
        d = rng.standard_normal((n, n)); w = rng.standard_normal((r, r))
        y = A @ ((G @ w @ G.T) * (B @ d @ B.T)) @ A.T
        ref = np.array([[np.sum(d[i:i + r, j:j + r] * w) for j in range(m)] for i in range(m)])
        worst = max(worst, np.abs(y - ref).max())
    return worst


def mat32(rows):
    return np.array([[float(x) for x in row] for row in rows], dtype=np.float32)


def apply_rows(mat, x, axis):
    """mat (p×q) applied along `axis` of x (size q), float32, summed term by term in index order
    (zero coefficients skipped, ±1 as adds), like the C transforms."""
    x = np.moveaxis(x, axis, 0)
    out = np.zeros((mat.shape[0],) + x.shape[1:], dtype=np.float32)
    for i in range(mat.shape[0]):
        acc = None
        for j in range(mat.shape[1]):
            c = mat[i, j]
            if c == 0:
                continue
            term = x[j] if c == 1 else (-x[j] if c == -1 else (np.float32(c) * x[j]).astype(np.float32))
            acc = term if acc is None else (acc + term).astype(np.float32)
        out[i] = acc if acc is not None else 0
    return np.moveaxis(out, 0, axis)


def winograd_conv(x, w, at, g, bt, m, stages32=("in", "w", "gemm", "out")):
    """x [C, H, W] (H, W multiples of m), w [K, C, 3, 3], padding 1. Stages not in `stages32` run in float64."""
    n = m + 2
    C, H, W = x.shape
    K = w.shape[0]
    xp = np.zeros((C, H + n, W + n), dtype=x.dtype)
    xp[:, 1:H + 1, 1:W + 1] = x
    th, tw = H // m, W // m
    # tiles [C, T, n, n]
    tiles = np.stack([xp[:, a * m:a * m + n, b * m:b * m + n] for a in range(th) for b in range(tw)], axis=1)
    def transform(mat, data, stage):
        if stage in stages32:
            mt = mat32(mat)
            d = data.astype(np.float32)
            return apply_rows(mt, apply_rows(mt, d, -2), -1)
        mt = np.array(mat, dtype=np.float64)
        d = data.astype(np.float64)
        return np.einsum("ai,...ij,bj->...ab", mt, d, mt)
    V = transform(bt, tiles, "in")                       # [C, T, n, n]
    U = transform(g, w, "w")                             # [K, C, n, n]
    Vx = V.reshape(C, -1, n * n).transpose(2, 0, 1)      # [ξ, C, T]
    Ux = U.reshape(K, C, n * n).transpose(2, 0, 1)       # [ξ, K, C]
    if "gemm" in stages32:
        M = np.matmul(Ux.astype(np.float32), Vx.astype(np.float32))
    else:
        M = np.matmul(Ux.astype(np.float64), Vx.astype(np.float64))
    M = M.transpose(1, 2, 0).reshape(K, -1, n, n)        # [K, T, n, n]
    Y = transform(at, M, "out")                          # [K, T, m, m]
    Y = Y.reshape(K, th, tw, m, m).transpose(0, 1, 3, 2, 4).reshape(K, H, W)
    return Y


def direct64(x, w):
    C, H, W = x.shape
    xp = np.zeros((C, H + 2, W + 2)); xp[:, 1:H + 1, 1:W + 1] = x
    out = np.zeros((w.shape[0], H, W))
    for i in range(3):
        for j in range(3):
            out += np.einsum("kc,chw->khw", w[:, :, i, j].astype(np.float64), xp[:, i:i + H, j:j + W])
    return out


def make_case(kind, C, side, K, seed):
    rng = np.random.default_rng(seed)
    if kind == "relu":
        x = np.maximum(rng.standard_normal((C, side, side)), 0)
        w = rng.standard_normal((K, C, 3, 3)) * np.sqrt(2.0 / (9 * C))
    else:
        x = rng.uniform(-1, 1, (C, side, side))
        w = rng.uniform(-1, 1, (K, C, 3, 3))
    return x.astype(np.float32), w.astype(np.float32)


CASES = [("relu", 64, 16, 32), ("relu", 256, 8, 32), ("uniform", 64, 16, 8)]


def errors(at, g, bt, m, cases, stages32=("in", "w", "gemm", "out")):
    """(largest |error| / output RMS, RMS error / output RMS) over the cases, worst of each."""
    worst_max = worst_rms = 0.0
    for kind, C, side, K, seed in cases:
        x, w = make_case(kind, C, side, K, seed)
        ref = direct64(x.astype(np.float64), w.astype(np.float64))
        y = winograd_conv(x, w, at, g, bt, m, stages32).astype(np.float64)
        scale = np.sqrt(np.mean(ref ** 2))
        worst_max = max(worst_max, np.abs(y - ref).max() / scale)
        worst_rms = max(worst_rms, np.sqrt(np.mean((y - ref) ** 2)) / scale)
    return worst_max, worst_rms


SETS = {
    "F(2×2) {0, ±1, ∞}": (2, [0, 1, -1]),
    "Lavin {0, ±1, ±2, ∞}": (4, [0, 1, -1, 2, -2]),
    "former {0, ±1, ½, −2, ∞}": (4, [0, 1, -1, Fr(1, 2), -2]),
    "{0, ±1, ±½, ∞}": (4, [0, 1, -1, Fr(1, 2), Fr(-1, 2)]),
    "{0, ±½, ±2, ∞}": (4, [0, Fr(1, 2), Fr(-1, 2), 2, -2]),
    "{0, −1, 1, −½, 2, ∞}": (4, [0, -1, 1, Fr(-1, 2), 2]),
    "{0, ±1, ±¾, ∞}": (4, [0, 1, -1, Fr(3, 4), Fr(-3, 4)]),
    "chosen {0, ±⅔, ±3⁄2, ∞}": (4, [0, Fr(2, 3), Fr(-2, 3), Fr(3, 2), Fr(-3, 2)]),
    "{0, ±1, ±⅔, ∞}": (4, [0, 1, -1, Fr(2, 3), Fr(-2, 3)]),
    "{0, ±¾, ±4⁄3, ∞}": (4, [0, Fr(3, 4), Fr(-3, 4), Fr(4, 3), Fr(-4, 3)]),
}


def seeded(cases, seeds):
    return [(k, c, s, kk, seed) for (k, c, s, kk) in cases for seed in seeds]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--search", action="store_true")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    cases = seeded(CASES, range(args.seeds))
    base = None
    print("| points | float64 check | max err / RMS | RMS err / RMS | ratio to F(2×2) (max, RMS) | input / weight / GEMM / output stage alone (RMS) |")
    print("|---|---|---|---|---|---|")
    for name, (m, pts) in SETS.items():
        at, g, bt = toom_cook(pts, m, 3)
        exact = check_exact(at, g, bt, m, 3)
        mx, rms = errors(at, g, bt, m, cases)
        if base is None:
            base = (mx, rms)
        stages = [errors(at, g, bt, m, cases, (s,))[1] for s in ("in", "w", "gemm", "out")]
        print(f"| {name} | {exact:.1e} | {mx:.2e} | {rms:.2e} | {mx / base[0]:.2f}, {rms / base[1]:.2f} | "
              + " / ".join(f"{s:.1e}" for s in stages) + " |")
        sys.stdout.flush()
    if args.search:
        # Alam, Anderson, Barabasz and Gregg (2022): points {0, ±c, ±1/c, ∞} cancel in the transforms.
        print()
        print("| c in {0, ±c, ±1/c, ∞} | max err / RMS | RMS err / RMS |")
        print("|---|---|---|")
        for c in [Fr(1, 2), Fr(3, 5), Fr(5, 8), Fr(2, 3), Fr(7, 10), Fr(3, 4), Fr(4, 5)]:
            at, g, bt = toom_cook([0, c, -c, 1 / c, -1 / c], 4, 3)
            mx, rms = errors(at, g, bt, 4, cases)
            print(f"| {c} | {mx:.2e} | {rms:.2e} |")
            sys.stdout.flush()

if __name__ == "__main__":
    main()
