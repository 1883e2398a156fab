// swift-tools-version:6.0
import PackageDescription

// A package that uses Finch as any other would: by version, from its repository. Point the URL at
// Finch's repository (or a clone: `file:///path/to/finch`); `.ci/consumer` rewrites it to a tagged
// clone, so CI fails if Finch cannot be a dependency (unsafe flags, a missing product).
let package = Package(
    name: "Classify",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "file:///path/to/finch", from: "0.1.0"),
    ],
    targets: [
        // Loads a checkpoint and classifies images: the inference API alone.
        .executableTarget(name: "classify", dependencies: [.product(name: "FinchTrain", package: "finch")],
                          path: "Sources/classify"),
        // Docs/FinchFromSwift.md, compiled: config → Trainer → callbacks → checkpoint → predict. It
        // imports every library product, so each one is built as a dependency.
        .executableTarget(name: "from-swift", dependencies: [
            .product(name: "FinchTensor", package: "finch"), .product(name: "FinchNN", package: "finch"),
            .product(name: "FinchOptim", package: "finch"), .product(name: "FinchData", package: "finch"),
            .product(name: "FinchIO", package: "finch"), .product(name: "FinchTrain", package: "finch"),
        ], path: "Sources/FromSwift"),
    ],
    swiftLanguageModes: [.v5]
)
