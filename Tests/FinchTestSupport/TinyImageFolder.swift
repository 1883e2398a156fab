import Foundation

/// A two-class ImageFolder under `root/data`: train/{a,b} with three photos each and val/{a,b}
/// with two, copied from Tests/Fixtures/images (a large JPEG, a baseline JPEG, a PNG).
public enum TinyImageFolder {
    public static let images = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/images").standardized

    public static func make(under root: URL) throws {
        for split in ["train", "val"] {
            for c in ["a", "b"] {
                let d = root.appendingPathComponent("data/\(split)/\(c)")
                try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
                for (i, f) in ["big.jpg", "baseline.jpg", "rgb.png"].enumerated() where split == "train" || i < 2 {
                    try FileManager.default.copyItem(at: images.appendingPathComponent(f), to: d.appendingPathComponent("\(i)-\(f)"))
                }
            }
        }
    }
}
