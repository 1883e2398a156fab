import XCTest
import Foundation
import FinchTensor
import FinchNN
import FinchOptim
@testable import FinchTrain

/// `finetune.unfreeze_at_epoch` rebuilds the optimizer groups and the schedule when the backbone
/// joins: what the run learnt so far (moments, a plateau's memory) must survive the switch.
extension TrainerTests {
    func unfreezingConfig(schedule: String, checkpoint: String = "{keep: 0}") throws -> TrainConfig {
        try TrainConfig.parse("""
        experiment: tiny
        seed: 3
        data: {root: unused, batch_size: 8}
        model: {name: tiny, drop_rate: 0.0}
        optimizer: {name: adamw, lr: 0.01, weight_decay: 0.01}
        schedule: \(schedule)
        finetune: {unfreeze_at_epoch: 2}
        checkpoint: \(checkpoint)
        """, source: "test.yaml")
    }

    final class StopAfterEpoch: TrainerCallback {
        let index: Int
        init(_ index: Int) { self.index = index }
        func trainerDidFinishEpoch(_ trainer: Trainer, record: EpochRecord) {
            if record.epoch == index { Trainer.stopRequest.store(true, ordering: .relaxed) }
        }
    }

    /// The plateau monitors the learning rate, which stays put: epoch 0 sets the best, epoch 1 is
    /// a bad epoch. After the switch to full fine-tuning the new schedule must still know both.
    func testUnfreezingKeepsThePlateauMemoryAndTheHeadsMoments() throws {
        let t = try makeTrainer(try unfreezingConfig(schedule: "{name: plateau, epochs: 4, warmup_epochs: 0, patience_epochs: 5}",
                                                     checkpoint: "{keep: 0, monitor: lr/decay, mode: max}"))
        t.checkpointDirectory = nil
        t.callbacks.append(StopAfterEpoch(1))
        try t.fit()
        Trainer.stopRequest.store(false, ordering: .relaxed)
        XCTAssertEqual(t.epoch, 2)
        let before = try XCTUnwrap(t.scheduler)
        XCTAssertEqual(before.plateauBest, 0.01, accuracy: 1e-9)
        XCTAssertEqual(before.plateauBadEpochs, 1)
        let tiny = t.model as! TinyClassifier
        let head = tiny.classifier.weight
        let headState = try XCTUnwrap((t.optimizer as! AdamW).state(for: head))
        let (step, expAvg, expAvgSq) = (headState.step, headState.expAvg.scalars, headState.expAvgSq.scalars)
        XCTAssertGreaterThan(step, 0)

        try t.applyFineTuning(forEpoch: 2)
        let after = try XCTUnwrap(t.scheduler)
        XCTAssertFalse(after === before, "the switch builds a new schedule over the new groups")
        XCTAssertTrue(t.optimizer.groups.contains { $0.parameters.contains { $0.name == "conv_stem.weight" } })
        XCTAssertEqual(after.plateauBest, 0.01, accuracy: 1e-9, "the best value before the switch")
        XCTAssertEqual(after.plateauBadEpochs, 1, "the bad epoch before the switch")
        XCTAssertEqual(after.plateauCooldown, before.plateauCooldown)
        XCTAssertEqual(after.lastT, 2)
        let carried = try XCTUnwrap((t.optimizer as! AdamW).state(for: head))
        XCTAssertEqual(carried.step, step)
        XCTAssertEqual(carried.expAvg.scalars, expAvg)
        XCTAssertEqual(carried.expAvgSq.scalars, expAvgSq)
        XCTAssertNil((t.optimizer as! AdamW).state(for: tiny.convStem.weight), "the backbone starts without moments")
    }

    /// With patience 1 the second bad epoch in a row cuts the rate, whether or not the backbone
    /// joined in between: epochs 1 and 2 are bad, so epoch 3 runs at a tenth.
    func testPlateauCountsBadEpochsAcrossTheSwitch() throws {
        let t = try makeTrainer(try unfreezingConfig(schedule: "{name: plateau, epochs: 4, warmup_epochs: 0, patience_epochs: 1}",
                                                     checkpoint: "{keep: 0, monitor: lr/decay, mode: max}"))
        t.checkpointDirectory = nil
        let records = try t.fit()
        XCTAssertEqual(records.count, 4)
        let rates = records.map { $0.values["lr/decay"]! }
        XCTAssertEqual(rates[0...2], Array(repeating: Double(Float(0.01)), count: 3)[...])
        XCTAssertEqual(rates[3], 0.001, accuracy: 1e-9)
    }

    /// The rate a plateau schedule reached is part of its memory too. Patience 0: epoch 1 is bad,
    /// so epoch 2 (the first with the backbone) runs at a tenth and epoch 3 at a hundredth. With
    /// warmup, the first full epoch continues the warmup where the head left it.
    func testUnfreezingKeepsThePlateauRate() throws {
        let cut = try makeTrainer(try unfreezingConfig(schedule: "{name: plateau, epochs: 4, warmup_epochs: 0, patience_epochs: 0}",
                                                       checkpoint: "{keep: 0, monitor: lr/decay, mode: max}"))
        cut.checkpointDirectory = nil
        let rates = try cut.fit().map { $0.values["lr/decay"]! }
        XCTAssertEqual(rates.count, 4)
        XCTAssertEqual(rates[0], 0.01, accuracy: 1e-9)
        XCTAssertEqual(rates[1], 0.01, accuracy: 1e-9)
        XCTAssertEqual(rates[2], 0.001, accuracy: 1e-9, "the reduction before the switch")
        XCTAssertEqual(rates[3], 0.0001, accuracy: 1e-9)

        let warm = try makeTrainer(try unfreezingConfig(schedule: "{name: plateau, epochs: 4, warmup_epochs: 3, warmup_lr: 0.001, patience_epochs: 5}",
                                                        checkpoint: "{keep: 0, monitor: lr/decay, mode: max}"))
        warm.checkpointDirectory = nil
        let warmRates = try warm.fit().map { $0.values["lr/decay"]! }
        for (e, r) in warmRates.enumerated() { XCTAssertEqual(r, 0.001 + Double(e) * 0.003, accuracy: 1e-9, "epoch \(e)") }
    }

    /// A checkpoint written at the end of the last head-only epoch holds the head's groups; a
    /// resume from it continues through the switch exactly as the run that never stopped, for a
    /// plateau schedule (whose reduction before the switch lives in the file's group rates) too.
    func testResumeAcrossTheUnfreezingEpochIsExact() throws {
        for (schedule, checkpoint) in [("{name: cosine, epochs: 4, warmup_epochs: 1, warmup_lr: 0.001}", "{keep: 0}"),
                                       ("{name: plateau, epochs: 4, warmup_epochs: 0, patience_epochs: 0}", "{keep: 0, monitor: lr/decay, mode: max}")] {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent("last.h5"))
            let straight = try makeTrainer(try unfreezingConfig(schedule: schedule, checkpoint: checkpoint))
            straight.checkpointDirectory = nil
            try straight.fit()

            let half = try makeTrainer(try unfreezingConfig(schedule: schedule, checkpoint: checkpoint))
            half.callbacks.append(StopAfterEpoch(1))
            try half.fit()
            Trainer.stopRequest.store(false, ordering: .relaxed)
            XCTAssertEqual(half.epoch, 2, schedule)

            let resumed = try makeTrainer(try unfreezingConfig(schedule: schedule, checkpoint: checkpoint))
            try resumed.resume(from: dir.appendingPathComponent("last.h5"))
            try resumed.fit()
            XCTAssertEqual(resumed.epoch, 4, schedule)
            for ((n, a), (_, b)) in zip(straight.model.stateDict(), resumed.model.stateDict()) {
                if case .float(let x) = a, case .float(let y) = b { XCTAssertEqual(x.scalars, y.scalars, "\(schedule): \(n)") }
                if case .int64(let x, _) = a, case .int64(let y, _) = b { XCTAssertEqual(x, y, "\(schedule): \(n)") }
            }
            XCTAssertEqual(straight.history["train/loss"]!, resumed.history["train/loss"]!, schedule)
            XCTAssertEqual(straight.history["lr/decay"]!, resumed.history["lr/decay"]!, schedule)
        }
    }
}
