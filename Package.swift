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
        // renameat2(RENAME_EXCHANGE) for atomic checkpoint swaps (a variadic syscall Swift cannot call),
        // and the MPI shim (Open MPI or MPICH dlopen'ed at run time, their handle ABIs behind one interface).
        .target(name: "CNudgeSystem"),
        // Tensor, the autodiff tape, CPU kernels, the run-time BLAS loader, RandomGenerator.
        .target(name: "NudgeTensor", dependencies: ["CNudgeKernels"]),
        // Module, layers, losses, optimizers, schedules, checkpoints, safetensors and GGUF, training control.
        .target(name: "NudgeNN", dependencies: ["NudgeTensor", "CNudgeSystem"]),
        // Config schemas, bindings and resolution, `config.toml` writing, and `--config` reading: TOML
        // with our own parser (TOMLParser.swift), YAML with Yams (ConfigFile.swift). No Nudge module.
        .target(name: "NudgeConfig", dependencies: [.product(name: "Yams", package: "Yams")]),
        // Run directories (config.toml, metrics logs, TensorBoard events), progress, SVG plots, HTML
        // reports, Ctrl-C handling. Uses NudgeConfig for the config.toml it writes; no other Nudge module.
        .target(name: "NudgeReport", dependencies: ["NudgeConfig"]),
        // The policy-gradient math RL and post-training share: clipped surrogate, value loss, KL
        // estimators, GAE, returns, normalization.
        .target(name: "NudgePolicyGradient", dependencies: ["NudgeTensor"]),
        // Environments, spaces, wrappers, vector envs, bandits, tabular and deep RL agents and their
        // config keys (NudgeConfig). No run directories or plots: RLRunner and the labs are in Nudge.
        .target(name: "NudgeRL", dependencies: ["NudgeTensor", "NudgeNN", "NudgeConfig", "NudgePolicyGradient"]),
        // Tokenizers, chat templates, transformer models, generation, Hugging Face and GGUF loading, LoRA.
        .target(name: "NudgeLM", dependencies: ["NudgeTensor", "NudgeNN"]),
        // Post-training: datasets, SFT/RM/DPO/KTO, the GRPO family, PPO-RLHF, rewards, judges, the
        // over-optimization lab (its instruments plot through NudgeReport). Does not import NudgeRL.
        .target(name: "NudgeAlign", dependencies: ["NudgeTensor", "NudgeNN", "NudgeLM", "NudgePolicyGradient", "NudgeConfig", "NudgeReport"]),
        // The umbrella library: re-exports the modules above (Nudge.swift) and holds what joins RL to
        // run tracking: RLRunner and the bandit and tabular labs (Runs/), which write run directories,
        // plots and HTML reports.
        .target(name: "Nudge", dependencies: ["NudgeTensor", "NudgeNN", "NudgeConfig", "NudgeReport", "NudgePolicyGradient", "NudgeRL", "NudgeLM", "NudgeAlign"]),
        // Engine benchmarks shared by `nudge bench` and the NudgeBench executable, and the
        // `nudge doctor` report (SystemReport), which measures the BLAS backend.
        .target(name: "NudgeBenchmarks", dependencies: ["CNudgeKernels", "NudgeTensor", "NudgeNN", "NudgeRL", "NudgeLM", "NudgeAlign"]),
        // The CLI: argument parsing and calls into the libraries.
        .executableTarget(
            name: "nudge",
            dependencies: [
                "Nudge", "NudgeBenchmarks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The benchmarks as JSON (`swift run -c release NudgeBench`).
        .executableTarget(name: "NudgeBench", dependencies: ["NudgeBenchmarks", "NudgeLM", "NudgeNN", "NudgeTensor", "NudgeRL"]),
        .testTarget(name: "NudgeTensorTests", dependencies: ["NudgeTensor"]),
        .testTarget(name: "NudgeNNTests", dependencies: ["NudgeNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NudgeConfigTests", dependencies: ["NudgeConfig"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NudgeReportTests", dependencies: ["NudgeReport", "NudgeConfig"]),
        .testTarget(name: "NudgeAlignTests", dependencies: ["Nudge", "NudgeAlign", "NudgePolicyGradient", "NudgeLM", "NudgeNN", "NudgeTensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NudgeLMTests", dependencies: ["NudgeLM", "NudgeNN", "NudgeTensor"], resources: [.copy("Fixtures")]),
        // Nudge: RLRunner and the labs (BanditLab, TabularLab) are tested here with the agents they run.
        .testTarget(name: "NudgeRLTests", dependencies: ["Nudge", "NudgeRL", "NudgePolicyGradient", "NudgeConfig", "NudgeReport", "NudgeNN", "NudgeTensor"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)
