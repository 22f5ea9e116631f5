// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Nudge",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Nudge", targets: ["Nudge"]),
        .library(name: "NudgeTensor", targets: ["NudgeTensor"]),
        .library(name: "NudgeNN", targets: ["NudgeNN"]),
        .library(name: "NudgeConfig", targets: ["NudgeConfig"]),
        .library(name: "NudgeReport", targets: ["NudgeReport"]),
        .library(name: "NudgePolicyGradient", targets: ["NudgePolicyGradient"]),
        .library(name: "NudgeRL", targets: ["NudgeRL"]),
        .library(name: "NudgeLM", targets: ["NudgeLM"]),
        .library(name: "NudgeAlign", targets: ["NudgeAlign"]),
        .executable(name: "nudge", targets: ["nudge"]),
        .executable(name: "NudgeBench", targets: ["NudgeBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // AVX2/FMA and AVX-512 kernels (packed sgemm, small-row products, decoding attention) with
        // function-level target attributes, chosen at run time (no -march).
        .target(name: "CNudgeKernels"),
        // renameat2(RENAME_EXCHANGE) for atomic checkpoint swaps (a variadic syscall Swift cannot call).
        .target(name: "CNudgeSystem"),
        .target(name: "NudgeTensor", dependencies: ["CNudgeKernels"]),
        .target(name: "NudgeNN", dependencies: ["NudgeTensor", "CNudgeSystem"]),
        // Config schemas, bindings and resolution, `config.toml` writing, and `--config` reading: TOML
        // with our own parser (TOMLParser.swift), YAML with Yams (ConfigFile.swift). No Nudge module.
        .target(name: "NudgeConfig", dependencies: [.product(name: "Yams", package: "Yams")]),
        // Run directories (config.toml, metrics logs, TensorBoard events), progress, SVG plots, HTML
        // reports, Ctrl-C handling.
        .target(name: "NudgeReport", dependencies: ["NudgeConfig"]),
        // The policy-gradient math RL and post-training share: clipped surrogate, value loss, KL
        // estimators, GAE, returns, normalization.
        .target(name: "NudgePolicyGradient", dependencies: ["NudgeTensor"]),
        .target(name: "NudgeRL", dependencies: ["NudgeTensor", "NudgeNN", "NudgeConfig", "NudgeReport", "NudgePolicyGradient"]),
        .target(name: "NudgeLM", dependencies: ["NudgeTensor", "NudgeNN"]),
        .target(name: "NudgeAlign", dependencies: ["NudgeTensor", "NudgeNN", "NudgeLM", "NudgePolicyGradient", "NudgeConfig", "NudgeReport"]),
        .target(name: "Nudge", dependencies: ["NudgeTensor", "NudgeNN", "NudgeConfig", "NudgeReport", "NudgePolicyGradient", "NudgeRL", "NudgeLM", "NudgeAlign"]),
        // Engine benchmarks shared by `nudge bench` and the NudgeBench executable.
        .target(name: "NudgeBenchmarks", dependencies: ["CNudgeKernels", "NudgeTensor", "NudgeNN", "NudgeRL", "NudgeLM", "NudgeAlign"]),
        .executableTarget(
            name: "nudge",
            dependencies: [
                "Nudge", "NudgeBenchmarks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "NudgeBench", dependencies: ["NudgeBenchmarks", "NudgeNN", "NudgeTensor", "NudgeRL"]),
        .testTarget(name: "NudgeTensorTests", dependencies: ["NudgeTensor"]),
        .testTarget(name: "NudgeNNTests", dependencies: ["NudgeNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NudgeConfigTests", dependencies: ["NudgeConfig"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NudgeReportTests", dependencies: ["NudgeReport", "NudgeConfig"]),
        .testTarget(name: "NudgeAlignTests", dependencies: ["Nudge", "NudgeAlign", "NudgePolicyGradient", "NudgeLM", "NudgeNN", "NudgeTensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NudgeLMTests", dependencies: ["NudgeLM", "NudgeNN", "NudgeTensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NudgeRLTests", dependencies: ["NudgeRL", "NudgePolicyGradient", "NudgeConfig", "NudgeReport", "NudgeNN", "NudgeTensor"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)
