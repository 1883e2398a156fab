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

/// Observers of one backward sweep, called on the thread that runs it. Data-parallel training
/// uses them to reduce a gradient while the rest of the graph is still being differentiated.
public struct BackwardHooks {
    /// Called once for each leaf whose gradient has received its last contribution of the sweep,
    /// right after it was accumulated into `grad` (final until the next backward). A leaf no
    /// gradient reaches is not reported.
    public var gradientFinal: ((Tensor) -> Void)?
    /// Called after each graph node's backward: a point to make progress on other work.
    public var afterNode: (() -> Void)?

    public init(gradientFinal: ((Tensor) -> Void)? = nil, afterNode: (() -> Void)? = nil) {
        self.gradientFinal = gradientFinal
        self.afterNode = afterNode
    }
}

extension Tensor {
    /// Reverse-mode sweep from this tensor. Without `gradient` the tensor must hold one element
    /// (a loss). Leaf gradients accumulate into `grad`; the graph is freed unless `retainGraph`.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false, hooks: BackwardHooks = BackwardHooks()) {
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
        // A leaf's gradient is final once every op using it has run, but the sweep order puts the
        // leaves, and views of them such as a Linear's transposed weight, last: a depth-first
        // order visits an op's weight before its input. Counting the uses of leaves and of nodes
        // computed from leaves alone lets them run as soon as their gradient is complete, so
        // each parameter's gradient is final, and reported, close to where its op ran.
        var usesLeft: [ObjectIdentifier: Int] = [:]
        var fromLeaves = Set<ObjectIdentifier>()
        for node in order {
            let inputs = (node.gradFn?.inputs ?? []).filter(\.requiresGrad)
            if node.gradFn != nil, !inputs.isEmpty,
               inputs.allSatisfy({ $0.gradFn == nil || fromLeaves.contains(ObjectIdentifier($0)) }) {
                fromLeaves.insert(ObjectIdentifier(node))
            }
            for input in inputs where input.gradFn == nil || fromLeaves.contains(ObjectIdentifier(input)) {
                usesLeft[ObjectIdentifier(input), default: 0] += 1
            }
        }
        noGrad {
            var ready: [(node: Tensor, gradient: Tensor)] = []
            func run(_ node: Tensor, _ g: Tensor) {
                guard let fn = node.gradFn else {
                    node.accumulateGrad(g)
                    hooks.gradientFinal?(node)
                    return
                }
                guard let bw = fn.backward else {
                    ensureFailed("backward: the graph through '\(fn.name)' was already freed; " +
                                        "pass retainGraph: true to backward twice")
                }
                let inputGrads = MemoryProfile.isEnabled ? MemoryProfile.inBackward(of: fn.name) { bw(g) } : bw(g)
                for (i, input) in fn.inputs.enumerated() where input.requiresGrad {
                    let key = ObjectIdentifier(input)
                    if i < inputGrads.count, let ig = inputGrads[i] {
                        ensure(ig.shape == input.shape,
                                     "backward of \(fn.name): gradient shape \(ig.shape) for input \(input.shape)")
                        if let existing = grads[key] {
                            grads[key] = existing.adding(ig)
                        } else {
                            grads[key] = ig
                        }
                    }
                    guard let left = usesLeft[key] else { continue }
                    usesLeft[key] = left - 1
                    if left == 1, let done = grads.removeValue(forKey: key) { ready.append((input, done)) }
                }
                // Saved tensors go as soon as their op is done, not at the end of the sweep.
                if !retainGraph { fn.release() }
                hooks.afterNode?()
            }
            for node in order.reversed() {
                // A node already run early has no gradient left here.
                guard let g = grads.removeValue(forKey: ObjectIdentifier(node)) else { continue }
                run(node, g)
                while let next = ready.popLast() { run(next.node, next.gradient) }
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
