/// Budgets that bound what decoding one image may cost, checked from the file's size and the
/// declared dimensions before anything is allocated, so a small crafted file cannot ask for
/// gigabytes or minutes. The defaults follow Pillow: `maxPixels` is `Image.MAX_IMAGE_PIXELS`
/// (Pillow warns above it and refuses above twice it; Finch refuses above it). Pass your own to
/// `ImageDecoder.decode(…, limits:)` or set `DataLoader.imageLimits` (a config's
/// `data.max_image_pixels` maps to `maxPixels`).
public struct ImageLimits: Sendable, Equatable {
    /// Pillow's `MAX_IMAGE_PIXELS`: 1 GiB of 24-bit pixels, 1024·1024·1024 / 4 / 3.
    public static let defaultMaxPixels = 89_478_485
    /// Far above any photograph at the pixel budget (a PNG of 89 M pixels is rarely 100 MB).
    public static let defaultMaxFileBytes = 256 << 20
    /// Scans of a progressive JPEG; libjpeg-turbo's own TJFLAG_LIMITSCANS uses the same 500.
    /// A crafted file with thousands of tiny scans costs a full pass over the image per scan.
    public static let defaultMaxJPEGScans = 500

    /// The largest width × height accepted.
    public let maxPixels: Int
    /// The largest file (or in-memory buffer) accepted, in bytes.
    public let maxFileBytes: Int
    /// The most start-of-scan markers a JPEG may hold.
    public let maxJPEGScans: Int

    public static let standard = ImageLimits(checked: defaultMaxPixels, defaultMaxFileBytes, defaultMaxJPEGScans)

    /// Throws when a budget is below 1 (a budget of zero would refuse every image) or above its
    /// ceiling: 2³¹ pixels (8 GiB of RGBA), 4 GiB files, 100,000 scans. A budget is a promise that
    /// the allocation it allows can be made.
    public init(maxPixels: Int = defaultMaxPixels, maxFileBytes: Int = defaultMaxFileBytes,
                maxJPEGScans: Int = defaultMaxJPEGScans) throws {
        for (name, v, ceiling) in [("max_image_pixels", maxPixels, 1 << 31), ("max_image_bytes", maxFileBytes, 1 << 32),
                                   ("max_jpeg_scans", maxJPEGScans, 100_000)] where !(1...ceiling).contains(v) {
            throw DataParameterError(parameter: name, value: "\(v)", reason: "must be between 1 and \(ceiling)")
        }
        self.init(checked: maxPixels, maxFileBytes, maxJPEGScans)
    }

    private init(checked maxPixels: Int, _ maxFileBytes: Int, _ maxJPEGScans: Int) {
        self.maxPixels = maxPixels
        self.maxFileBytes = maxFileBytes
        self.maxJPEGScans = maxJPEGScans
    }
}
