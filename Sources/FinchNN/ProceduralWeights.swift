import FinchTensor

/// Deterministic weights from a tensor's name and shape, computed bit for bit the same by
/// `Tests/Fixtures/tools/make_parity.py` (numpy) and here. Parity fixtures made with them
/// need to store only what the model computes, not the weights (see that script's docstring
/// for the rule). Not a training initialisation: a reproducible test pattern with sane scales.
public enum ProceduralWeights {
    static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    public static func fnv1a64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }

    @inline(__always)
    public static func hash(_ nameHash: UInt64, _ i: Int) -> UInt64 {
        var z = (nameHash ^ (UInt64(i) &* golden)) &+ golden
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// u in [0, 1), exact in Float32.
    @inline(__always)
    public static func unit(_ nameHash: UInt64, _ i: Int) -> Float {
        Float(hash(nameHash, i) >> 40) / Float(1 << 24)
    }

    /// The procedural values for a float tensor called `name` with `shape`.
    public static func values(name: String, shape: [Int]) -> [Float] {
        let n = Shape.count(shape)
        let h = fnv1a64(name)
        let u = (0..<n).map { unit(h, $0) }
        if name.hasSuffix("running_var") { return u.map { $0 + 0.5 } }
        if name.hasSuffix("running_mean") { return u.map { (2 * $0 - 1) * Float(0.1) } }
        if shape.count >= 2 {
            let fanIn = shape[1] * shape.dropFirst(2).reduce(1, *)
            let bound = Float((3.0 / Double(fanIn)).squareRoot())
            return u.map { (2 * $0 - 1) * bound }
        }
        if name.hasSuffix(".weight") { return u.map { $0 + 0.5 } }
        return u.map { (2 * $0 - 1) * Float(0.1) }
    }

    /// Overwrites every parameter and buffer of `module` (Int64 counters become 0).
    public static func fill(_ module: Module) throws {
        var sd: [String: StateValue] = [:]
        for (name, value) in module.stateDict() {
            switch value {
            case .float(let t): sd[name] = .float(Tensor(values(name: name, shape: t.shape), shape: t.shape))
            case .int64(let v, let shape): sd[name] = .int64([Int64](repeating: 0, count: v.count), shape: shape)
            }
        }
        try module.load(stateDict: sd)
    }

    /// The fixtures' input batch: (2u − 1)·1.5 on the name "input".
    public static func input(batch: Int, resolution: Int) -> Tensor {
        let shape = [batch, 3, resolution, resolution]
        let h = fnv1a64("input")
        return Tensor((0..<Shape.count(shape)).map { (2 * unit(h, $0) - 1) * 1.5 }, shape: shape)
    }

    /// The fixtures' labels: hash("target", i) mod classes.
    public static func labels(batch: Int, classes: Int) -> [Int] {
        let h = fnv1a64("target")
        return (0..<batch).map { Int(hash(h, $0) % UInt64(classes)) }
    }
}
