import Foundation
import FinchTensor

/// Learning-rate schedules with timm's semantics (`timm.scheduler`, built as its
/// `create_scheduler_v2` does): warmup from `warmupLRInit` over `warmupT` steps, then the
/// decay rule on each group's base lr (`initialLR`), times the group's `lrScale`.
/// `t` counts epochs (`stepsPerEpoch == nil`) or optimizer updates.
public final class Scheduler {
    public enum Kind: Equatable, Sendable {
        /// Cosine annealing to `lrMin` over `tInitial` (timm `CosineLRScheduler`, with cycles and k-decay).
        case cosine(cycleMul: Double = 1, cycleDecay: Double = 1, cycleLimit: Int = 1, kDecay: Double = 1)
        /// lr × decayRate^⌊t / decayT⌋.
        case step(decayT: Int, decayRate: Double)
        /// lr × decayRate^(milestones passed), with timm's convention that milestone m applies at t = m − 1.
        case multistep(milestones: [Int], decayRate: Double)
        /// Base lr after warmup.
        case constant
        /// ReduceLROnPlateau on a monitored metric, stepped per epoch (timm `PlateauLRScheduler`).
        case plateau(mode: PlateauMode = .max, patience: Int = 10, decayRate: Double = 0.1,
                     threshold: Double = 1e-4, cooldown: Int = 0)
    }

    public enum PlateauMode: String, Sendable { case min, max }

    public let kind: Kind
    public let groups: [ParamGroup]
    public let tInitial: Int
    public let lrMin: Double
    public let warmupT: Int
    public let warmupLRInit: Double
    public let warmupPrefix: Bool
    /// Stepped per epoch (`step(epoch:)`) or per update (`stepUpdate(_:)`), as timm's `t_in_epochs`.
    public let tInEpochs: Bool
    let baseValues: [Double]
    let warmupSteps: [Double]

    /// Position for checkpoints: the last t given, and the plateau's memory.
    public private(set) var lastT: Int = -1
    public private(set) var plateauBest: Double
    public private(set) var plateauBadEpochs = 0
    public private(set) var plateauCooldown = 0

    public init(kind: Kind, groups: [ParamGroup], tInitial: Int, lrMin: Double = 0, warmupT: Int = 0,
                warmupLRInit: Double = 0, warmupPrefix: Bool = false, tInEpochs: Bool = true) {
        ensure(tInitial > 0, "Scheduler: t_initial must be positive, got \(tInitial)")
        self.kind = kind
        self.groups = groups
        self.tInitial = tInitial
        self.lrMin = lrMin
        self.warmupT = warmupT
        self.warmupLRInit = warmupLRInit
        self.warmupPrefix = warmupPrefix
        self.tInEpochs = tInEpochs
        baseValues = groups.map { Double($0.initialLR) }
        warmupSteps = warmupT > 0 ? baseValues.map { ($0 - warmupLRInit) / Double(warmupT) } : baseValues.map { _ in 1 }
        if case .plateau(let mode, _, _, _, _) = kind { plateauBest = mode == .max ? -.infinity : .infinity } else { plateauBest = 0 }
        if warmupT > 0 { update(baseValues.map { _ in warmupLRInit }) } else { update(baseValues) }
    }

    /// timm's `create_scheduler_v2`: epochs and warmup in epochs, converted to updates when
    /// stepping per update; cosine's length is `epochs` (plus warmup when `warmupPrefix`).
    public convenience init(kind: Kind, groups: [ParamGroup], epochs: Int, warmupEpochs: Int = 0,
                            warmupLR: Double = 1e-5, minLR: Double = 0, warmupPrefix: Bool = false,
                            updatesPerEpoch: Int? = nil) {
        let k = updatesPerEpoch ?? 1
        var kind = kind
        switch kind {
        case .step(let d, let r): kind = .step(decayT: d * k, decayRate: r)
        case .multistep(let m, let r): kind = .multistep(milestones: m.map { $0 * k }, decayRate: r)
        default: break
        }
        self.init(kind: kind, groups: groups, tInitial: epochs * k, lrMin: minLR, warmupT: warmupEpochs * k,
                  warmupLRInit: warmupLR, warmupPrefix: warmupPrefix, tInEpochs: updatesPerEpoch == nil)
    }

    /// Values before lr scale at position `t` (not for plateau, whose value depends on history).
    public func values(at t: Int) -> [Double] {
        if t < warmupT { return warmupSteps.map { warmupLRInit + Double(t) * $0 } }
        let tt = warmupPrefix ? t - warmupT : t
        switch kind {
        case .cosine(let mul, let cycleDecay, let limit, let k):
            let i: Int, ti: Double, tCurr: Double
            if mul != 1 {
                i = Int(floor(log(1 - Double(tt) / Double(tInitial) * (1 - mul)) / log(mul)))
                ti = pow(mul, Double(i)) * Double(tInitial)
                tCurr = Double(tt) - (1 - pow(mul, Double(i))) / (1 - mul) * Double(tInitial)
            } else {
                i = tt / tInitial
                ti = Double(tInitial)
                tCurr = Double(tt - tInitial * i)
            }
            guard i < limit else { return baseValues.map { _ in lrMin } }
            let gamma = pow(cycleDecay, Double(i))
            return baseValues.map { v in
                lrMin + 0.5 * (v * gamma - lrMin) * (1 + cos(Double.pi * pow(tCurr, k) / pow(ti, k)))
            }
        case .step(let d, let r):
            return baseValues.map { $0 * pow(r, Double(tt / d)) }
        case .multistep(let milestones, let r):
            let passed = milestones.filter { $0 <= tt + 1 }.count
            return baseValues.map { $0 * pow(r, Double(passed)) }
        case .constant:
            return baseValues
        case .plateau:
            return groups.map { Double($0.lr / max($0.lrScale, .leastNormalMagnitude)) }
        }
    }

    /// End of epoch `epoch` (timm's `scheduler.step(epoch + 1, metric)` convention is the caller's:
    /// pass the index of the epoch about to start). Plateau needs the monitored `metric`.
    public func step(epoch: Int, metric: Double? = nil) {
        if case .plateau = kind {
            stepPlateau(epoch: epoch, metric: metric)
            return
        }
        guard tInEpochs else { return }
        lastT = epoch
        update(values(at: epoch))
    }

    /// After optimizer update `numUpdates` (schedules that step per update).
    public func stepUpdate(_ numUpdates: Int) {
        guard !tInEpochs else { return }
        if case .plateau = kind { return }
        lastT = numUpdates
        update(values(at: numUpdates))
    }

    /// Restores the position saved in a checkpoint (plateau memory included).
    public func restore(lastT: Int, plateauBest: Double, plateauBadEpochs: Int, plateauCooldown: Int) {
        self.lastT = lastT
        self.plateauBest = plateauBest
        self.plateauBadEpochs = plateauBadEpochs
        self.plateauCooldown = plateauCooldown
        if case .plateau = kind { return }   // plateau lrs live in the optimizer groups, restored with them
        if lastT >= 0 { update(values(at: lastT)) }
    }

    /// The position and plateau memory, as checkpoints store them.
    public func stateDict() -> SchedulerState {
        SchedulerState(lastT: lastT, plateauBest: plateauBest, plateauBadEpochs: plateauBadEpochs, plateauCooldown: plateauCooldown)
    }

    /// Restores a state from `stateDict()` (this scheduler's or a predecessor's over other
    /// groups), refusing values no schedule can reach.
    public func load(stateDict s: SchedulerState) throws {
        guard s.lastT >= -1, s.plateauBadEpochs >= 0, s.plateauCooldown >= 0, !s.plateauBest.isNaN else {
            throw SchedulerStateError(state: s)
        }
        restore(lastT: s.lastT, plateauBest: s.plateauBest, plateauBadEpochs: s.plateauBadEpochs, plateauCooldown: s.plateauCooldown)
    }

    /// A plateau schedule built over new groups (gradual unfreezing) continues `previous`: every
    /// group gets the rate it would have had from the start, the warmup position at `lastT` and
    /// as many reductions as `previous` made. Other schedules recompute their rates on `restore`.
    public func continueRates(from previous: Scheduler) {
        guard case .plateau = kind, case .plateau = previous.kind, let k = previous.plateauReductions() else { return }
        for (g, v) in zip(groups, plateauStartValues(at: lastT)) {
            var lr = Float(v * Double(g.lrScale))
            for _ in 0..<k { lr = reducedOnPlateau(lr) }
            g.lr = lr
        }
    }

    /// A plateau's rates before any reduction: the warmup value while warming up, then the last
    /// warmup value (or the base without warmup), which `stepPlateau` leaves in place.
    private func plateauStartValues(at t: Int) -> [Double] {
        guard warmupT > 0 else { return baseValues }
        let position = Double(Swift.min(Swift.max(t, 0), warmupT))
        return warmupSteps.map { warmupLRInit + position * $0 }
    }

    /// One reduction exactly as `stepPlateau` makes it.
    private func reducedOnPlateau(_ lr: Float) -> Float {
        guard case .plateau(_, _, let factor, _, _) = kind else { return lr }
        let old = Double(lr), new = Swift.max(old * factor, lrMin)
        return old - new > 1e-8 ? Float(new) : lr
    }

    /// How many reductions this plateau schedule has made, read from its groups' rates (they are
    /// what checkpoints keep): the count of a group still above the floor; nil when no group's
    /// rate is reachable from its start (rates set from outside).
    private func plateauReductions() -> Int? {
        var floorBound: Int?
        for (g, v) in zip(groups, plateauStartValues(at: lastT)) {
            var lr = Float(v * Double(g.lrScale)), k = 0
            while lr != g.lr {
                let next = reducedOnPlateau(lr)
                if next == lr { break }
                lr = next
                k += 1
            }
            guard lr == g.lr else { continue }
            if reducedOnPlateau(lr) != lr { return k }
            floorBound = Swift.max(floorBound ?? 0, k)
        }
        return floorBound
    }

    private func stepPlateau(epoch: Int, metric: Double?) {
        guard case .plateau(let mode, let patience, let factor, let threshold, let cooldown) = kind else { return }
        lastT = epoch
        if epoch <= warmupT {
            update(warmupSteps.map { warmupLRInit + Double(epoch) * $0 })
            return
        }
        guard let metric else { return }
        let better = mode == .max ? metric > plateauBest * (1 + threshold) : metric < plateauBest * (1 - threshold)
        if better {
            plateauBest = metric
            plateauBadEpochs = 0
        } else {
            plateauBadEpochs += 1
        }
        if plateauCooldown > 0 {
            plateauCooldown -= 1
            plateauBadEpochs = 0
        }
        if plateauBadEpochs > patience {
            for g in groups {
                let old = Double(g.lr), new = max(old * factor, lrMin)
                if old - new > 1e-8 { g.lr = Float(new) }
            }
            plateauCooldown = cooldown
            plateauBadEpochs = 0
        }
    }

    private func update(_ values: [Double]) {
        for (g, v) in zip(groups, values) { g.lr = Float(v * Double(g.lrScale)) }
    }
}

/// A scheduler's position: the last t it was stepped to and a plateau schedule's memory (best
/// value so far, epochs without improvement, cooldown left). Schedules other than plateau keep
/// the plateau fields at their start values.
public struct SchedulerState: Equatable, Sendable {
    public var lastT: Int
    public var plateauBest: Double
    public var plateauBadEpochs: Int
    public var plateauCooldown: Int

    public init(lastT: Int, plateauBest: Double, plateauBadEpochs: Int, plateauCooldown: Int) {
        self.lastT = lastT
        self.plateauBest = plateauBest
        self.plateauBadEpochs = plateauBadEpochs
        self.plateauCooldown = plateauCooldown
    }
}

/// A scheduler state no schedule can be in (a negative count, last t below −1, a NaN best).
public struct SchedulerStateError: Error, CustomStringConvertible, Equatable {
    public let state: SchedulerState
    public var description: String {
        "scheduler state out of range: last_t \(state.lastT), plateau_best \(state.plateauBest), plateau_bad_epochs \(state.plateauBadEpochs), plateau_cooldown \(state.plateauCooldown)"
    }
}
