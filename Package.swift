// swift-tools-version:6.0
import PackageDescription

// Layered targets: each depends only on those above it (ARCHITECTURE.md is the map).
let package = Package(
    name: "Finch",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "FinchTensor", targets: ["FinchTensor"]),
        .library(name: "FinchNN", targets: ["FinchNN"]),
        .library(name: "FinchOptim", targets: ["FinchOptim"]),
        .library(name: "FinchData", targets: ["FinchData"]),
        .library(name: "FinchIO", targets: ["FinchIO"]),
        .library(name: "FinchTrain", targets: ["FinchTrain"]),
        .executable(name: "finch", targets: ["finch"]),
        .executable(name: "train", targets: ["train"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
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
        // libjpeg-turbo's TurboJPEG API: errors as return codes (no longjmp), DCT-domain scaling.
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),

        // Open MPI (mpirun -np N train …): data-parallel training, FinchTrain/Distributed.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),

        // glibc's malloc tuning (mallopt), which the Glibc module does not export.
        .systemLibrary(name: "CMalloc"),

        .target(name: "CFinchKernels"),
        // Reads an HDF5 file in a forked child before libhdf5 opens it in-process (HDF5Probe.c).
        .target(name: "CFinchHDF5Probe", dependencies: ["CHDF5"]),
        .target(name: "FinchTensor", dependencies: ["COpenBLAS", "CMalloc", "CFinchKernels"]),

        .target(name: "FinchNN", dependencies: ["FinchTensor"]),

        .target(name: "FinchData", dependencies: ["FinchTensor", "CPNG", "CTurboJPEG",
                                               .product(name: "Logging", package: "swift-log")]),

        .target(name: "FinchOptim", dependencies: ["FinchTensor", "FinchNN"]),
        .target(name: "FinchIO", dependencies: ["FinchTensor", "FinchNN", "CHDF5", "CFinchHDF5Probe",
                                                .product(name: "SwiftProtobuf", package: "swift-protobuf")]),

        // Parity against PyTorch references (`finch compare`, FinchParityTests): a verification harness
        // that runs AdamW and reads safetensors, kept out of FinchIO (file formats) and FinchTrain (training).
        .target(name: "FinchParity", dependencies: ["FinchTensor", "FinchNN", "FinchOptim", "FinchIO"]),

        .target(name: "FinchTrain", dependencies: ["FinchTensor", "FinchNN", "FinchData", "FinchOptim", "FinchIO", "CMPI",
                                                   .product(name: "Yams", package: "Yams"),
                                                   .product(name: "Logging", package: "swift-log"),
                                                   .product(name: "SwiftProtobuf", package: "swift-protobuf")]),

        .executableTarget(name: "finch", dependencies: [
            "FinchTensor", "FinchNN", "FinchOptim", "FinchData", "FinchIO", "FinchParity", "FinchTrain",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .executableTarget(name: "train", dependencies: [
            "FinchTrain",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // An example of scripting experiments against the library (Experiments/README.md).
        .executableTarget(name: "lr-sweep", dependencies: ["FinchTrain"], path: "Experiments/LRSweep"),
        // Fuzz targets (Tests/Fuzz/README.md): the readers of outside input driven by bytes. `.ci/fuzz`
        // builds finch-fuzz with libFuzzer and ASan from the command line; plainly built, it replays files.
        .target(name: "FinchFuzzTargets", dependencies: ["FinchTensor", "FinchNN", "FinchData", "FinchIO", "FinchTrain"],
                path: "Tests/Fuzz/FinchFuzzTargets"),
        .executableTarget(name: "finch-fuzz", dependencies: ["FinchFuzzTargets"], path: "Tests/Fuzz/finch-fuzz"),

        .testTarget(name: "FinchTensorTests",
                    dependencies: ["FinchTensor", "CFinchKernels", "COpenBLAS", "CHDF5", "CPNG", "CJPEG"]),
        .testTarget(name: "FinchNNTests", dependencies: ["FinchNN"]),
        .testTarget(name: "FinchOptimTests", dependencies: ["FinchOptim"]),
        .testTarget(name: "FinchDataTests", dependencies: ["FinchData"]),
        .target(name: "FinchTestSupport", path: "Tests/FinchTestSupport"),
        .testTarget(name: "FinchIOTests", dependencies: ["FinchIO", "FinchTensor", "FinchTestSupport"]),
        .testTarget(name: "FinchTrainTests", dependencies: ["FinchTrain", "FinchTestSupport",
                                                           .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "FinchParityTests", dependencies: ["FinchParity", "FinchIO", "FinchNN", "FinchTensor"]),
        .testTarget(name: "FinchFuzzTests", dependencies: ["FinchFuzzTargets"]),
    ],
    swiftLanguageModes: [.v5]
)
