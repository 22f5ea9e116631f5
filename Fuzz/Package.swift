// swift-tools-version: 6.0
// libFuzzer targets for the parsers a user feeds (datasets, model and tokenizer files, config
// files, safetensors, metrics logs, chat templates). A package of its own so that the main `swift build` and
// `swift test` never see the fuzzer flags; build and run it with `scripts/fuzz.sh`.
//
// Each executable defines `LLVMFuzzerTestOneInput` and its main.swift runs libFuzzer's driver on
// it, so it only links with `-sanitize=fuzzer` (see scripts/fuzz.sh for the exact command).
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name, which is whatever the checkout is called.
let parent = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let nudge = parent.lastPathComponent.lowercased()

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: nudge) })
}

let targets: [(String, [String])] = [
    ("FuzzJSONL", ["NudgeAlign"]),
    ("FuzzParquet", ["NudgeAlign"]),
    ("FuzzConfigJSON", ["NudgeLM"]),
    ("FuzzTokenizerJSON", ["NudgeLM"]),
    ("FuzzTokenizerConfig", ["NudgeLM"]),
    ("FuzzTokenizerEncode", ["NudgeLM"]),
    ("FuzzTOML", ["NudgeConfig"]),
    ("FuzzYAML", ["NudgeConfig"]),
    ("FuzzSafeTensors", ["NudgeNN"]),
    ("FuzzSafeTensorsIndex", ["NudgeNN"]),
    ("FuzzGGUF", ["NudgeNN", "NudgeLM"]),
    ("FuzzMetrics", ["NudgeReport"]),
    ("FuzzChatTemplate", ["NudgeLM"]),
]

let package = Package(
    name: "NudgeFuzz",
    platforms: [.macOS(.v14)],
    products: targets.map { .executable(name: $0.0, targets: [$0.0]) },
    dependencies: [.package(path: "..")],
    targets: [
        .systemLibrary(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"]),
    ] + targets.map { fuzzTarget($0.0, $0.1) },
    swiftLanguageModes: [.v6]
)
