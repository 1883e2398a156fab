import FinchTensor
import FinchNN

/// `distributed.dist_bn` (timm's `--dist-bn`): how the ranks' BatchNorm running statistics, which
/// drift apart when each rank normalises with its own batch statistics, become one set before
/// every evaluation and checkpoint.
public enum DistributedBatchNorm: String, CaseIterable, Sendable {
    /// The mean over ranks (timm's `reduce`).
    case reduce
    /// Rank 0's (timm's `broadcast`).
    case broadcast

    /// Applies the choice to every BatchNorm whose statistics train; frozen ones are equal already.
    func synchronize(_ model: Module, over comm: Communicator) {
        var tensors: [Tensor] = []
        for (_, m) in model.namedModules() {
            guard let bn = m as? BatchNorm2d, !bn.usesRunningStatsAlways else { continue }
            tensors += [bn.runningMean, bn.runningVar]
        }
        guard !tensors.isEmpty else { return }
        var flat = tensors.flatMap(\.scalars)
        switch self {
        case .reduce:
            var sums = flat.map(Double.init)
            comm.allreduceSum(&sums)
            flat = sums.map { Float($0 / Double(comm.size)) }
        case .broadcast:
            flat.withUnsafeMutableBytes { comm.broadcast($0, root: 0) }
        }
        var at = 0
        noGrad {
            for t in tensors {
                t.assign(Tensor(Array(flat[at..<at + t.count]), shape: t.shape))
                at += t.count
            }
        }
    }
}
