import Foundation
import FinchData

extension TrainingSetup {
    /// A data-parallel run's set-up, before the first step: every rank must hold the same
    /// resolved config and dataset (compared by fingerprint; a difference stops every rank with
    /// the ranks named), every full batch and the last one must give each rank at least one image,
    /// and the loaders then yield this rank's share of each batch.
    static func shareData(_ c: TrainConfig, data: SplitData, loaders: (train: DataLoader, val: DataLoader),
                          over comm: Communicator) throws -> DataParallel {
        try requireSameRun(comm, fingerprints: [
            ("resolved config", fingerprint([c.resolvedYAML])),
            ("training set (files and labels)", fingerprint(data.train.samples.map { "\($0.url.path)\t\($0.label)" })),
            ("validation set (files and labels)", fingerprint(data.val.samples.map { "\($0.url.path)\t\($0.label)" })),
        ])
        let n = comm.size, b = c.data.batchSize
        guard b >= n else {
            throw ConfigError(file: c.source, key: "data.batch_size", message: "\(b) is the global batch; \(n) ranks need at least one image each")
        }
        let last = loaders.train.samplesPerEpoch % b
        if !c.data.dropLast && last > 0 && last < n {
            throw ConfigError(file: c.source, key: "data.drop_last", message: "the last training batch of \(last) images cannot give each of \(n) ranks one; set drop_last: true or another batch_size")
        }
        for loader in [loaders.train, loaders.val] { loader.shard = try Shard(index: comm.rank, count: n) }
        return DataParallel(communicator: comm, bucketMB: c.distributed.bucketMB, distBN: c.distributed.distBN,
                            syncBN: c.distributed.syncBN, overlap: c.distributed.overlap)
    }

    /// The config with `data.batch_size` as the global batch: with `distributed.batch_size_per_rank`
    /// it is multiplied by the ranks (timm's `--batch-size`), so the learning rate derived from
    /// `lr_base` scales with the global batch, as in timm. A single process's batch is unchanged.
    static func globalBatch(_ c: TrainConfig, ranks: Int) throws -> TrainConfig {
        guard c.distributed.batchSizePerRank, ranks > 1 else { return c }
        let (b, overflow) = c.data.batchSize.multipliedReportingOverflow(by: ranks)
        guard !overflow, b <= TrainConfig.Limits.batchSize else {
            throw ConfigError(file: c.source, key: "data.batch_size", message: "\(c.data.batchSize) per rank × \(ranks) ranks is a global batch above \(TrainConfig.Limits.batchSize)")
        }
        var g = c
        g.data.batchSize = b
        return g
    }

    static func fingerprint(_ parts: [String]) -> UInt64 {
        var h = FNV1a()
        for p in parts { h.add(p) }
        return h.value
    }

    /// Compares each fingerprint with rank 0's; throws the same error on every rank.
    static func requireSameRun(_ comm: Communicator, fingerprints: [(what: String, value: UInt64)]) throws {
        for (what, value) in fingerprints {
            let all = comm.allgather(Double(bitPattern: value))
            let differing = all.indices.filter { all[$0].bitPattern != all[0].bitPattern }
            if !differing.isEmpty { throw DistributedError.runMismatch(what: what, ranks: differing) }
        }
    }
}
