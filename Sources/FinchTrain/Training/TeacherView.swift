import FinchTensor
import FinchData
import FinchNN

extension Distillation {
    /// `distill.teacher.view`: what a teacher trained at another resolution sees of each
    /// training photo.
    public enum TeacherView: String, CaseIterable, Sendable {
        /// The loader renders every draw a second time at the teacher's size from the same decoded
        /// photo with the same augmentation draws, normalised with the teacher's mean/std; MixUp
        /// and CutMix mix it with the student's draws (Beyer et al. 2022's consistent teaching).
        case own
        /// The student's batch resized to the teacher's size (bilinear, timm's F.interpolate).
        case resized
    }

    /// Whether a run renders the teacher's own view: `view: own` with a teacher size other than the
    /// student's (at the same size the two views are the same pixels, re-normalised).
    static func rendersOwnView(_ c: TrainConfig, studentSize: Int) -> Bool {
        guard let t = c.distill?.teacher, let size = t.imageSize else { return false }
        return t.view == .own && size != studentSize
    }

    /// The teacher's normalisation: the config's, else the teacher model's own.
    static func teacherNormalization(_ t: TrainConfig.Teacher, model: ImageClassifier) -> (mean: [Float], std: [Float]) {
        (t.mean.map { $0.map(Float.init) } ?? model.pretrainedConfig.mean, t.std.map { $0.map(Float.init) } ?? model.pretrainedConfig.std)
    }

    /// The student's training transform at the teacher's size and statistics. Every random draw
    /// of `ImageTransform.apply` before random erasing is independent of the output size, so run
    /// on a copy of the student's stream it makes the same choices; random erasing's draws scale
    /// with the image, which is why the config refuses it with `view: own`.
    public static func teacherTransform(student: ImageTransform, size: Int, mean: [Float], std: [Float]) -> ImageTransform {
        ensure(student.training && student.randomErasing == nil,
               "Distillation.teacherTransform: a training transform without random erasing (its boxes depend on the size)")
        var t = student
        t.size = size
        t.mean = mean
        t.std = std
        return t
    }
}
