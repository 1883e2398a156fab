// swift-tools-version:6.0
import PackageDescription

// Layered targets: each depends only on those above it (see ../shared/DESIGN.md).
let package = Package(
    name: "Finch",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "FinchTensor", targets: ["FinchTensor"]),
        .library(name: "FinchIO", targets: ["FinchIO"]),
        .executable(name: "finch", targets: ["finch"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System-library shims, resolved through pkg-config.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg62-turbo-dev"])]),

        // glibc's malloc tuning (mallopt), which the Glibc module does not export.
        .systemLibrary(name: "CMalloc"),

        .target(name: "FinchTensor", dependencies: ["COpenBLAS", "CMalloc"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),

        // Will also depend on FinchNN once that target lands.
        .target(name: "FinchIO", dependencies: ["FinchTensor"]),

        .executableTarget(name: "finch", dependencies: [
            "FinchTensor",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "FinchTensorTests",
                    dependencies: ["FinchTensor", "COpenBLAS", "CHDF5", "CPNG", "CJPEG"]),
        .testTarget(name: "FinchIOTests", dependencies: ["FinchIO", "FinchTensor"]),
    ],
    swiftLanguageModes: [.v5]
)
