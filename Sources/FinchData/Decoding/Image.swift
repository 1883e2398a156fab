import FinchTensor
/// A decoded 8-bit RGB image, row-major and interleaved (HWC), the form decoders produce and
/// the geometric transforms work on before conversion to a normalised CHW tensor.
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// width × height × 3 bytes: R, G, B per pixel, rows top to bottom.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        ensure(width > 0 && height > 0 && pixels.count == width * height * 3,
                     "Image: \(pixels.count) bytes for \(width)×\(height) RGB")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A uniformly coloured image (tests, padding).
    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8)) {
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            p[3 * i] = fill.0
            p[3 * i + 1] = fill.1
            p[3 * i + 2] = fill.2
        }
        self.init(width: width, height: height, pixels: p)
    }
}
