import FinchTensor

/// A state-dict entry: Float32 tensors for parameters and most buffers, Int64 for counters
/// such as BatchNorm's `num_batches_tracked` (PyTorch stores those as int64).
public enum StateValue {
    case float(Tensor)
    case int64([Int64], shape: [Int])

    public var shape: [Int] {
        switch self {
        case .float(let t): return t.shape
        case .int64(_, let shape): return shape
        }
    }
}

/// An Int64 buffer owned by a module (mutable in place, like a Tensor buffer).
public final class Int64Buffer {
    public var values: [Int64]
    public let shape: [Int]
    public init(_ values: [Int64], shape: [Int] = []) {
        ensure(values.count == Shape.count(shape), "Int64Buffer: \(values.count) values for shape \(shape)")
        self.values = values
        self.shape = shape
    }
}

/// Base of every layer and model. A module owns named parameters, buffers and child modules;
/// dotted paths of those names are exactly timm's `state_dict()` keys.
open class Module {
    public private(set) var isTraining = true
    public private(set) var children: [(name: String, module: Module)] = []
    public private(set) var ownParameters: [(name: String, tensor: Tensor)] = []
    private(set) var ownBuffers: [(name: String, value: Buffer)] = []
    /// Randomness for dropout-like layers; shared through the whole tree (see `setRandomSource`).
    public private(set) var randomSource = RandomSource(seed: 0)

    enum Buffer {
        case float(Tensor)
        case int64(Int64Buffer)
    }

    public init() {}

    /// Forward pass. Subclasses override.
    open func callAsFunction(_ x: Tensor) -> Tensor {
        ensureFailed("\(type(of: self)) does not implement callAsFunction(_:)")
    }

    // MARK: Registration

    /// Adds or replaces a child module under `name`; it joins this tree's training mode and random source.
    @discardableResult
    public func register<M: Module>(_ name: String, _ module: M) -> M {
        module.train(isTraining)
        module.setRandomSource(randomSource)
        if let i = children.firstIndex(where: { $0.name == name }) {
            children[i] = (name, module)
        } else {
            children.append((name, module))
        }
        return module
    }

    /// Adds a trainable parameter (requiresGrad on).
    public func registerParameter(_ name: String, _ tensor: Tensor) {
        tensor.requiresGrad = true
        if let i = ownParameters.firstIndex(where: { $0.name == name }) {
            ownParameters[i] = (name, tensor)
        } else {
            ownParameters.append((name, tensor))
        }
    }

    public func registerBuffer(_ name: String, _ tensor: Tensor) {
        ownBuffers.removeAll { $0.name == name }
        ownBuffers.append((name, .float(tensor)))
    }

    public func registerBuffer(_ name: String, _ buffer: Int64Buffer) {
        ownBuffers.removeAll { $0.name == name }
        ownBuffers.append((name, .int64(buffer)))
    }

    // MARK: Traversal

    /// This module and every descendant with its dotted path ("" for self), depth first.
    public func namedModules(prefix: String = "") -> [(name: String, module: Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (n, c) in children {
            out += c.namedModules(prefix: prefix.isEmpty ? n : "\(prefix).\(n)")
        }
        return out
    }

    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        namedModules().flatMap { path, m in
            m.ownParameters.map { (path.isEmpty ? $0.name : "\(path).\($0.name)", $0.tensor) }
        }
    }

    public var parameters: [Tensor] { namedParameters().map(\.tensor) }

    /// Float buffers (running statistics) with dotted names.
    public func namedBuffers() -> [(name: String, tensor: Tensor)] {
        namedModules().flatMap { path, m in
            m.ownBuffers.compactMap { b -> (String, Tensor)? in
                guard case .float(let t) = b.value else { return nil }
                return (path.isEmpty ? b.name : "\(path).\(b.name)", t)
            }
        }
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
    public var trainableParameterCount: Int { parameters.filter(\.requiresGrad).reduce(0) { $0 + $1.count } }

    // MARK: Modes

    /// Training mode for this module and all descendants (BatchNorm uses batch statistics, dropout is on).
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, c) in children { c.train(on) }
    }

    public func eval() { train(false) }

    public func setRandomSource(_ source: RandomSource) {
        randomSource = source
        for (_, c) in children { c.setRandomSource(source) }
    }

    public func zeroGrad() { for p in parameters { p.grad = nil } }

    // MARK: Freezing

    /// Frozen parameters do not require grad, so no op records gradient work for them.
    /// A prefix matches a name equal to it or continuing with ".": "blocks.1" matches
    /// "blocks.1.0.conv.weight" but not "blocks.10.…".
    @discardableResult
    public func freeze(prefixes: [String]? = nil) -> Int { setRequiresGrad(false, prefixes: prefixes) }

    @discardableResult
    public func unfreeze(prefixes: [String]? = nil) -> Int { setRequiresGrad(true, prefixes: prefixes) }

    private func setRequiresGrad(_ flag: Bool, prefixes: [String]?) -> Int {
        var changed = 0
        for (name, p) in namedParameters() where prefixes.map({ Module.matches(name, prefixes: $0) }) ?? true {
            p.requiresGrad = flag
            if !flag { p.grad = nil }
            changed += 1
        }
        return changed
    }

    public static func matches(_ name: String, prefixes: [String]) -> Bool {
        prefixes.contains { p in p.isEmpty || name == p || name.hasPrefix(p + ".") }
    }

    // MARK: State dict

    /// Parameters and buffers in PyTorch's `state_dict()` order: each module's own parameters,
    /// then its own buffers, then its children in registration order.
    public func stateDict() -> [(name: String, value: StateValue)] {
        namedModules().flatMap { path, m -> [(String, StateValue)] in
            let full = { (n: String) in path.isEmpty ? n : "\(path).\(n)" }
            let params = m.ownParameters.map { (full($0.name), StateValue.float($0.tensor)) }
            let bufs = m.ownBuffers.map { b -> (String, StateValue) in
                switch b.value {
                case .float(let t): return (full(b.name), .float(t))
                case .int64(let i): return (full(b.name), .int64(i.values, shape: i.shape))
                }
            }
            return params + bufs
        }
    }

    /// Copies values into this module's tensors (identity of parameter tensors is kept, so
    /// optimizers holding them stay valid). With `strict`, missing and unexpected keys are
    /// errors; a wrong shape is always an error. Nothing is changed when it throws.
    public func load(stateDict source: [String: StateValue], strict: Bool = true) throws {
        var slots: [String: Slot] = [:]
        for (path, m) in namedModules() {
            let full = { (n: String) in path.isEmpty ? n : "\(path).\(n)" }
            for p in m.ownParameters { slots[full(p.name)] = .float(p.tensor) }
            for b in m.ownBuffers {
                switch b.value {
                case .float(let t): slots[full(b.name)] = .float(t)
                case .int64(let i): slots[full(b.name)] = .int64(i)
                }
            }
        }
        let missing = slots.keys.filter { source[$0] == nil }.sorted()
        let unexpected = source.keys.filter { slots[$0] == nil }.sorted()
        var mismatched: [(String, [Int], [Int])] = []
        for (name, slot) in slots {
            guard let v = source[name] else { continue }
            if slot.shape != v.shape { mismatched.append((name, slot.shape, v.shape)) }
        }
        mismatched.sort { $0.0 < $1.0 }
        if !mismatched.isEmpty || (strict && (!missing.isEmpty || !unexpected.isEmpty)) {
            throw StateDictError(missing: strict ? missing : [], unexpected: strict ? unexpected : [],
                                 mismatched: mismatched.map { .init(name: $0.0, expected: $0.1, found: $0.2) })
        }
        for (name, slot) in slots {
            guard let v = source[name] else { continue }
            switch (slot, v) {
            case (.float(let t), .float(let s)):
                t.assign(s)
            case (.float(let t), .int64(let values, _)):
                t.assign(Tensor(values.map { Float($0) }, shape: t.shape))
            case (.int64(let b), .int64(let values, _)):
                b.values = values
            case (.int64(let b), .float(let s)):
                b.values = s.scalars.map { Int64($0) }
            }
        }
    }

    private enum Slot {
        case float(Tensor)
        case int64(Int64Buffer)
        var shape: [Int] {
            switch self {
            case .float(let t): return t.shape
            case .int64(let b): return b.shape
            }
        }
    }
}

/// What `load(stateDict:strict:)` found wrong, all at once so a user fixes everything in one go.
public struct StateDictError: Error, CustomStringConvertible, Equatable {
    public struct Mismatch: Equatable {
        public let name: String
        public let expected: [Int]
        public let found: [Int]
        public init(name: String, expected: [Int], found: [Int]) {
            self.name = name
            self.expected = expected
            self.found = found
        }
    }
    public let missing: [String]
    public let unexpected: [String]
    public let mismatched: [Mismatch]
    public var source: String? = nil

    public init(missing: [String], unexpected: [String], mismatched: [Mismatch], source: String? = nil) {
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched
        self.source = source
    }

    public var description: String {
        var lines = ["state dict does not fit the model" + (source.map { " (\($0))" } ?? "") + ":"]
        func list(_ xs: [String]) -> String { xs.prefix(10).joined(separator: ", ") + (xs.count > 10 ? ", … (\(xs.count) in all)" : "") }
        if !missing.isEmpty { lines.append("  missing keys: \(list(missing))") }
        if !unexpected.isEmpty { lines.append("  unexpected keys: \(list(unexpected))") }
        for m in mismatched.prefix(10) {
            lines.append("  wrong shape for \(m.name): model has \(m.expected), checkpoint has \(m.found)")
        }
        if mismatched.count > 10 { lines.append("  … \(mismatched.count - 10) more shape mismatches") }
        return lines.joined(separator: "\n")
    }
}
