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
        case recipe(() -> Tensor)
    }
    private let kept: Kept

    /// Keeps `dense` (the dense data of `input` a kernel read), or `input`'s recipe when it has one.
    init(_ input: Tensor, dense: Tensor) {
        if SavedActivations.recompute, let r = input.rematerialize, input.isContiguous {
            kept = .recipe(r)
        } else {
            kept = .values(dense)
        }
    }

    /// The values: the kept tensor, or a fresh dense tensor rebuilt from the recipe.
    func materialize() -> Tensor {
        switch kept {
        case .values(let t): return t
        case .recipe(let r): return noGrad { r() }
        }
    }

    /// Whether the values are rebuilt rather than kept.
    var isRecomputed: Bool {
        if case .recipe = kept { return true }
        return false
    }
}

/// Switch for `SavedTensor`'s recomputation, for measuring what it saves and costs.
public enum SavedActivations {
    /// On by default: results are identical either way, only memory and time differ.
    nonisolated(unsafe) public static var recompute = true
}

extension Tensor {
    /// Lets consumers keep a recipe instead of this map (see `SavedTensor`): set by the op that made
    /// this tensor, only when it was recorded; the closure must not capture this tensor.
    @inline(__always)
    func setRematerialize(_ recipe: @escaping () -> Tensor) {
        guard gradFn != nil else { return }
        rematerialize = recipe
    }
}
