/// An op's input kept for its backward pass.
///
/// Most inputs are kept as they are. An input that is the recorded result of an op able to rebuild
/// it bit for bit from what that op keeps for its own backward anyway (BatchNorm from its input and
/// batch statistics, SiLU from its input) is kept as that recipe instead: the map is then held once
/// rather than twice, and rebuilt only while the consumer's backward runs. In a conv–BN–act chain
/// this drops the activation map each convolution would keep (timm keeps both, as PyTorch must).
struct SavedTensor {
    private enum Kept {
        case values(Tensor)
        case recipe(Rebuilt)
    }
    private let kept: Kept

    /// Keeps `dense` (the dense data of `input` a kernel read), or `input`'s recipe when it has one.
    init(_ input: Tensor, dense: Tensor) {
        if let r = input.recipe {
            kept = .recipe(r)
        } else {
            kept = .values(dense)
        }
    }

    /// The values: the kept tensor, or the rebuilt one.
    func materialize() -> Tensor {
        switch kept {
        case .values(let t): return t
        case .recipe(let r): return r.value()
        }
    }

    /// Whether the values are rebuilt rather than kept.
    var isRecomputed: Bool {
        if case .recipe = kept { return true }
        return false
    }
}

/// A recorded result's recipe and, once a consumer asked for them, its values, shared by every
/// consumer.
///
/// Recipes chain: a residual block's output is rebuilt from its BatchNorm's recipe and the block
/// input's recipe (`+` and ReLU pass recipes on; BatchNorm's residual form, the block's end as one
/// op, rebuilds it in one pass over the input's values), so a stage of blocks keeps only what its
/// BatchNorms keep. Values a consumer asked for (`value()`) stay here until the last holder lets
/// go (the ops' backward closures, released right after they run), so a map read by two backward
/// passes is built once. Links built only on the way to another (`transientValue()`) are not
/// kept: keeping them would hold a whole stage's block outputs again at its backward's start
/// (ResNet50 at 224 px: 196 MiB more at the step's peak), for the price of rebuilding a link
/// once per later block of its stage. The deeper operand of a sum is built first, so a chain
/// needs about three maps at a time.
final class Rebuilt {
    private var recipe: (() -> Tensor)?
    private var built: Tensor?
    /// Links below this one: 0 for a recipe that reads only what its op keeps.
    let depth: Int

    init(depth: Int = 0, _ recipe: @escaping () -> Tensor) {
        self.depth = depth
        self.recipe = recipe
    }

    /// The values, built on first use and kept for the next reader.
    func value() -> Tensor {
        if let built { return built }
        let t = transientValue()
        built = t
        // The values are all later readers need; what the recipe captured may go.
        recipe = nil
        return t
    }

    /// The values, kept if a consumer asked for them already, else built and not kept.
    func transientValue() -> Tensor { transient().values }

    /// The values and whether the caller alone holds them (built just now, not kept): the next
    /// link of a chain may then write its result over them.
    func transient() -> (values: Tensor, owned: Bool) {
        if let built { return (built, false) }
        guard let recipe else { ensureFailed("Rebuilt: recipe used after it was dropped") }
        return (noGrad { MemoryProfile.isEnabled ? MemoryProfile.labelling("rebuilt", recipe) : recipe() }, true)
    }

    /// a + b, the deeper operand built first (its transient links are gone by the time the other is
    /// built) and, when it is the caller's alone, the sum written over it: a chain then needs two
    /// maps at a time. Addition commutes exactly, so the sum is the recorded one bit for bit.
    static func sum(_ a: Rebuilt, _ b: Rebuilt) -> Tensor {
        let (deep, other) = a.depth >= b.depth ? (a, b) : (b, a)
        let d = deep.transient()
        let o = other.transientValue()
        guard d.owned, d.values.isContiguous else { return Kernels.zip(a === deep ? d.values : o, a === deep ? o : d.values, AddKernel.self, op: "add") }
        Kernels.addInPlace(d.values, o)
        return d.values
    }

    /// relu(input), written over the input's values when they are the caller's alone.
    static func relu(_ input: Rebuilt) -> Tensor {
        let (v, owned) = input.transient()
        guard owned, v.isContiguous else { return Kernels.map(v, ReLUKernel.self) }
        let p = v.basePointer
        Parallel.forEach(v.count, grain: 1 << 15) { r in
            for i in r { p[i] = ReLUKernel.apply(p[i]) }
        }
        return v
    }

    /// Values already built (for tests).
    var isBuilt: Bool { built != nil }
}

/// Switches for `SavedTensor`'s recomputation, for measuring what it saves and costs. Results are
/// identical either way, only memory and time differ. The environment variable `FINCH_RECOMPUTE`
/// sets both at start-up: `off`, `local` (each op's own output only, no chains through `+` and
/// ReLU) or `all` (the default).
public enum SavedActivations {
    private static let fromEnvironment = ProcessInfoLite.environment("FINCH_RECOMPUTE")
    /// Consumers keep recipes instead of maps.
    nonisolated(unsafe) public static var recompute = fromEnvironment != "off"
    /// `+` of two rebuildable maps and ReLU of one are rebuildable too (residual blocks).
    nonisolated(unsafe) public static var chains = fromEnvironment != "off" && fromEnvironment != "local"
}

extension Tensor {
    /// Lets consumers keep a recipe instead of this map (see `SavedTensor`): set by the op that made
    /// this tensor, only when it was recorded; the closure must not capture this tensor.
    @inline(__always)
    func setRematerialize(_ recipe: @escaping () -> Tensor) {
        guard gradFn != nil else { return }
        rematerialize = Rebuilt(recipe)
    }

    /// The same, with a recipe the op's own backward shares.
    @inline(__always)
    func setRematerialize(_ rebuilt: Rebuilt) {
        guard gradFn != nil else { return }
        rematerialize = rebuilt
    }

    /// This tensor's recipe, when recomputation is on and the tensor is the op's dense result.
    var recipe: Rebuilt? {
        guard SavedActivations.recompute, isContiguous else { return nil }
        return rematerialize
    }
}
