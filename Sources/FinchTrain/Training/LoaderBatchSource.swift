import FinchData

/// The data loader as the trainer's batch source.
public final class LoaderBatchSource: BatchSource {
    public let loader: DataLoader
    public let classes: [String]
    public init(loader: DataLoader, classes: [String]) {
        self.loader = loader
        self.classes = classes
    }
    public var batchCount: Int { loader.batchCount }
    public var skippedCount: Int { loader.skippedFiles.count }
    public var teacherViewSize: Int? { loader.secondView?.size }
    public func batches(epoch: Int, startingAt start: Int) throws -> AnyIterator<Result<Batch, Error>> {
        let it = try loader.viewBatches(epoch: epoch, startingAt: start)
        return AnyIterator { it.next().map { r in r.map { Batch(images: $0.images, labels: $0.labels, teacherImages: $0.secondImages) } } }
    }
}
