/// One recorded op: its inputs and how to turn the output's gradient into theirs.
final class GradFn {
    let name: String
    var inputs: [Tensor]
    var backward: ((Tensor) -> [Tensor?])?

    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }

    /// Drops saved tensors and closures so the graph's memory goes back right after backward.
    func release() {
        inputs = []
        backward = nil
    }
}

/// Attaches `out` to the tape when recording is on and any input needs a gradient, and describes
/// it to an active tracer as `traced` (nil: an op export formats do not see) reading `operands`
/// (default: `inputs`). Each op calls this once; the description is built only while tracing.
/// The closure must not capture `out` itself (that would be a reference cycle); capture `out.detach()`.
@inline(__always)
func record(_ out: Tensor, _ name: String, _ inputs: [Tensor], _ traced: @autoclosure () -> TracedOpKind?,
            operands: @autoclosure () -> [Tensor?]? = nil,
            _ backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
    trace(out, inputs, traced(), operands: operands())
    guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return out }
    out.requiresGrad = true
    // Edges point at leaves themselves (backward accumulates into them) and at the storage-free
    // graph nodes of recorded results, so an intermediate map lives only as long as the caller
    // or some backward closure holds it, as in PyTorch. Holding the tensors here kept every
    // activation of a step alive until the end of backward.
    out.gradFn = GradFn(name: name, inputs: inputs.map { $0.gradFn == nil ? $0 : $0.graphNode }, backward: backward)
    if MemoryProfile.isEnabled { MemoryProfile.label(out.storage, name) }
    return out
}

extension Tensor {
    /// Reverse-mode sweep from this tensor. Without `gradient` the tensor must hold one element
    /// (a loss). Leaf gradients accumulate into `grad`; the graph is freed unless `retainGraph`.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) {
        ensure(requiresGrad, "backward: tensor of shape \(shape) does not require grad")
        let seed: Tensor
        if let gradient {
            ensure(gradient.shape == shape,
                         "backward: gradient of shape \(gradient.shape) for tensor of shape \(shape)")
            seed = gradient.detach()
        } else {
            ensure(count == 1, "backward: implicit gradient needs a one-element tensor, got shape \(shape)")
            seed = Tensor(repeating: 1, shape: shape)
        }

        let order = topologicalOrder()
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        noGrad {
            for node in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(node)) else { continue }
                guard let fn = node.gradFn else {
                    node.accumulateGrad(g)
                    continue
                }
                guard let bw = fn.backward else {
                    ensureFailed("backward: the graph through '\(fn.name)' was already freed; " +
                                        "pass retainGraph: true to backward twice")
                }
                let inputGrads = MemoryProfile.isEnabled ? MemoryProfile.inBackward(of: fn.name) { bw(g) } : bw(g)
                for (input, ig) in zip(fn.inputs, inputGrads) {
                    guard input.requiresGrad, let ig else { continue }
                    ensure(ig.shape == input.shape,
                                 "backward of \(fn.name): gradient shape \(ig.shape) for input \(input.shape)")
                    let key = ObjectIdentifier(input)
                    if let existing = grads[key] {
                        grads[key] = existing.adding(ig)
                    } else {
                        grads[key] = ig
                    }
                }
                // Saved tensors go as soon as their op is done, not at the end of the sweep.
                if !retainGraph { fn.release() }
            }
        }
        if !retainGraph {
            // Nodes the sweep did not reach (no gradient flowed to them) still hold their closures.
            for node in order { node.gradFn?.release() }
        }
    }

    /// Leaves first, this tensor last; iterative so deep graphs do not overflow the stack.
    private func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded {
                order.append(t)
                continue
            }
            guard visited.insert(ObjectIdentifier(t)).inserted else { continue }
            stack.append((t, true))
            for input in t.gradFn?.inputs ?? [] where input.requiresGrad
                && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        return order
    }

    private func accumulateGrad(_ g: Tensor) {
        if let existing = grad {
            Kernels.addInPlace(existing, g)
        } else {
            // Own the memory: `g` may alias a saved tensor or another leaf's gradient.
            grad = g.copy()
        }
    }

    /// Sum of two gradients without recording, in one pass; reuses neither input's storage.
    func adding(_ other: Tensor) -> Tensor { Kernels.zip(self, other, AddKernel.self, op: "gradient sum") }

    /// Name of the op that produced this tensor (nil for leaves), for debugging and tests.
    public var gradFnName: String? { gradFn?.name }
}
