import FinchTensor

/// `torch.optim.AdamW` (amsgrad optional), following torch's single-tensor CPU path step by step:
///   p ← p·(1 − lr·wd);  m ← lerp(m, g, 1 − β1);  v ← β2·v + (1 − β2)·g²
///   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
/// Bias corrections are computed in Double as Python does; per-parameter step counts.
public final class AdamW: Optimizer {
    public let groups: [ParamGroup]
    public var betas: (Float, Float)
    public var eps: Float
    public var amsgrad: Bool

    /// Moments per parameter, created on the parameter's first update (frozen ones never get any).
    public final class State {
        public var step: Int = 0
        public let expAvg: Tensor
        public let expAvgSq: Tensor
        public let maxExpAvgSq: Tensor?
        init(shape: [Int], amsgrad: Bool) {
            expAvg = Tensor(zeros: shape)
            expAvgSq = Tensor(zeros: shape)
            maxExpAvgSq = amsgrad ? Tensor(zeros: shape) : nil
        }
    }

    public private(set) var state: [ObjectIdentifier: State] = [:]

    public init(groups: [ParamGroup], betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8, amsgrad: Bool = false) {
        ensure(betas.0 >= 0 && betas.0 < 1 && betas.1 >= 0 && betas.1 < 1, "AdamW: betas \(betas) not in [0, 1)")
        ensure(eps >= 0, "AdamW: eps \(eps) is negative")
        self.groups = groups
        self.betas = betas
        self.eps = eps
        self.amsgrad = amsgrad
    }

    /// One group over `parameters` with torch's defaults (lr 1e-3, weight decay 1e-2).
    public convenience init(parameters: [(name: String, tensor: Tensor)], lr: Float = 1e-3,
                            betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
                            weightDecay: Float = 1e-2, amsgrad: Bool = false) {
        self.init(groups: [ParamGroup(parameters: parameters, lr: lr, weightDecay: weightDecay)],
                  betas: betas, eps: eps, amsgrad: amsgrad)
    }

    public func state(for parameter: Tensor) -> State? { state[ObjectIdentifier(parameter)] }

    /// Restores one parameter's moments and step count (checkpoint resume).
    public func restoreState(for parameter: Tensor, step: Int, expAvg: Tensor, expAvgSq: Tensor,
                             maxExpAvgSq: Tensor? = nil) {
        ensure(expAvg.shape == parameter.shape && expAvgSq.shape == parameter.shape,
                     "AdamW: restored moments \(expAvg.shape) / \(expAvgSq.shape) for parameter \(parameter.shape)")
        let s = State(shape: parameter.shape, amsgrad: amsgrad)
        s.step = step
        s.expAvg.assign(expAvg)
        s.expAvgSq.assign(expAvgSq)
        if let m = maxExpAvgSq, let dst = s.maxExpAvgSq { dst.assign(m) }
        state[ObjectIdentifier(parameter)] = s
    }

    public func stateDict() -> OptimizerStateDict {
        var entries: [(name: String, state: ParameterState)] = []
        for g in groups {
            for (name, p) in g.parameters {
                guard let s = state(for: p) else { continue }
                var tensors = [("exp_avg", s.expAvg), ("exp_avg_sq", s.expAvgSq)]
                if let m = s.maxExpAvgSq { tensors.append(("max_exp_avg_sq", m)) }
                entries.append((name, ParameterState(tensors: tensors, counters: [("step", Int64(s.step))])))
            }
        }
        return OptimizerStateDict(type: "adamw",
                                  hyperparameters: [("betas", .doubles([Double(betas.0), Double(betas.1)])),
                                                    ("eps", .double(Double(eps))), ("amsgrad", .int64(amsgrad ? 1 : 0))],
                                  parameters: entries)
    }

    /// `max_exp_avg_sq` may be absent (the running maximum then restarts from zero) and is
    /// dropped when amsgrad is off, as torch does when the flag changes between runs.
    public func load(stateDict sd: OptimizerStateDict) throws {
        let entries = try sd.validated(for: self, type: "adamw", tensors: ["exp_avg", "exp_avg_sq"],
                                       optionalTensors: ["max_exp_avg_sq"], counters: ["step"])
        for (p, s) in entries {
            restoreState(for: p, step: Int(s.counter("step")!), expAvg: s.tensor("exp_avg")!, expAvgSq: s.tensor("exp_avg_sq")!,
                         maxExpAvgSq: s.tensor("max_exp_avg_sq"))
        }
    }

    public func step() {
        let (b1, b2) = betas
        var items: [Item] = []
        var keepAlive: [Tensor] = []
        var total = 0
        for group in groups {
            let lr = Double(group.lr), wd = Double(group.weightDecay)
            for (_, p) in group.parameters {
                guard let g = p.grad else { continue }
                ensure(g.shape == p.shape, "AdamW: gradient \(g.shape) for parameter \(p.shape)")
                let s = state[ObjectIdentifier(p)] ?? {
                    let s = State(shape: p.shape, amsgrad: amsgrad)
                    state[ObjectIdentifier(p)] = s
                    return s
                }()
                s.step += 1
                let t = Double(s.step)
                let c = Coefficients(decay: Float(1 - lr * wd), stepSize: Float(lr / (1 - pow(Double(b1), t))),
                                     bc2Sqrt: Float((1 - pow(Double(b2), t)).squareRoot()),
                                     oneMinusB1: Float(1 - Double(b1)), b2: b2, oneMinusB2: Float(1 - Double(b2)),
                                     eps: eps)
                let gc = g.isContiguous ? g : g.copy()
                keepAlive.append(gc)
                items.append(Item(start: total, count: p.count, p: p.basePointer, g: gc.basePointer,
                                  m: s.expAvg.basePointer, v: s.expAvgSq.basePointer,
                                  max: s.maxExpAvgSq?.basePointer, c: c))
                total += p.count
            }
        }
        // One parallel loop over all parameters laid end to end, not one per parameter: a network's
        // many small tensors (BatchNorm affines, biases) were each updated on the calling thread
        // alone while the workers waited, and each large one paid a loop's start and join. Every
        // element goes through the same eight-lane formula wherever the parts split, so the bits do
        // not depend on the thread count.
        withExtendedLifetime(keepAlive) {
            items.withUnsafeBufferPointer { items in
                Parallel.forEach(total, grain: 1 << 14) { r in Self.update(items, r) }
            }
        }
    }

    /// One parameter's share of a step: its pointers, its coefficients and where its elements start
    /// in the concatenation of all parameters updated together.
    struct Item {
        let start, count: Int
        let p: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>
        let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, max: UnsafeMutablePointer<Float>?
        let c: Coefficients
    }

    /// Updates elements `r` of the concatenation, parameter by parameter.
    static func update(_ items: UnsafeBufferPointer<Item>, _ r: Range<Int>) {
        // The last item starting at or before r.lowerBound (items are in order of `start`).
        var lo = 0, hi = items.count
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if items[mid].start <= r.lowerBound { lo = mid } else { hi = mid }
        }
        var k = lo
        while k < items.count && items[k].start < r.upperBound {
            let it = items[k]
            let from = Swift.max(r.lowerBound, it.start) - it.start
            let to = Swift.min(r.upperBound, it.start + it.count) - it.start
            var i = from
            while i + 8 <= to {
                update(it.p + i, it.g + i, it.m + i, it.v + i, it.max.map { $0 + i }, it.c)
                i += 8
            }
            if i < to { updateTail(it.p + i, it.g + i, it.m + i, it.v + i, it.max.map { $0 + i }, to - i, it.c) }
            k += 1
        }
    }

    struct Coefficients {
        let decay, stepSize, bc2Sqrt, oneMinusB1, b2, oneMinusB2, eps: Float
    }

    /// Eight parameters at once. Square root and division are correctly rounded in every lane and
    /// nothing is contracted, so each lane gets the scalar formula's bits (the vector form was 3% of
    /// a ResNet18 training step as a scalar loop).
    @inline(__always)
    static func update(_ pp: UnsafeMutablePointer<Float>, _ gp: UnsafePointer<Float>, _ mp: UnsafeMutablePointer<Float>,
                       _ vp: UnsafeMutablePointer<Float>, _ maxp: UnsafeMutablePointer<Float>?, _ c: Coefficients) {
        typealias V = SIMD8<Float>
        func load(_ q: UnsafePointer<Float>) -> V { UnsafeRawPointer(q).loadUnaligned(as: V.self) }
        func store(_ x: V, _ q: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(q).storeBytes(of: x, as: V.self) }
        let g = load(gp)
        var m = load(mp), v = load(vp)
        m += c.oneMinusB1 * (g - m)
        v = v * c.b2 + c.oneMinusB2 * (g * g)
        store(m, mp)
        store(v, vp)
        if let maxp {
            v = pointwiseMax(load(maxp), v)
            store(v, maxp)
        }
        let denom = v.squareRoot() / c.bc2Sqrt + c.eps
        store(load(pp) * c.decay + -c.stepSize * (m / denom), pp)
    }

    /// The last count < 8 parameters of a range, through the same lanes padded with zeros.
    static func updateTail(_ pp: UnsafeMutablePointer<Float>, _ gp: UnsafePointer<Float>,
                           _ mp: UnsafeMutablePointer<Float>, _ vp: UnsafeMutablePointer<Float>,
                           _ maxp: UnsafeMutablePointer<Float>?, _ count: Int, _ c: Coefficients) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 40) { lanes in
            let t = lanes.baseAddress!
            t.initialize(repeating: 0, count: 40)
            let rows: [UnsafeMutablePointer<Float>?] = [pp, UnsafeMutablePointer(mutating: gp), mp, vp, maxp]
            for (k, row) in rows.enumerated() { if let row { (t + 8 * k).update(from: row, count: count) } }
            update(t, t + 8, t + 16, t + 24, maxp == nil ? nil : t + 32, c)
            for (k, row) in rows.enumerated() where k != 1 { row?.update(from: t + 8 * k, count: count) }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
